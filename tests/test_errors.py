"""The one rule that turns a TensorFlow error into the reason of a one-line message."""

import pytest
import tensorflow as tf

from tfgender import errors


def test_reason_of_an_eager_op_error_is_the_ops_words():
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        tf.io.decode_jpeg(b"\xff\xd8 not a jpeg")
    text = errors.reason(caught.value)
    assert "{{" not in text and "[Op:" not in text and "name:" not in text
    assert text and text in caught.value.message


def test_reason_of_a_graph_error_drops_the_frames_and_node_tags():
    @tf.function
    def decode(data):
        return tf.io.decode_jpeg(data)

    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        decode(tf.constant(b"\xff\xd8 not a jpeg"))
    assert caught.value.message.startswith("Graph execution error")
    text = errors.reason(caught.value)
    assert not text.startswith(("Graph execution", "Detected at node", "File"))
    assert "[[" not in text and "{{" not in text and "[Op:" not in text
    assert errors.reason(caught.value, limit=10) == text[:10]


def test_reason_of_an_empty_message_is_the_error_type():
    assert errors.reason(tf.errors.UnavailableError(None, None, "")) == "UnavailableError"
    assert errors.reason(ValueError("plain words [[{{node x}}]]")) == "plain words"

"""Tests for tfgender.models.batch_norm: the fused layer computes what Keras' layer does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgender import models
from tfgender.models.batch_norm import FusedBatchNormalization, fuse_batch_norm


def _pair(shape, **kwargs):
    """A Keras BatchNormalization and a fused one with the same non-trivial weights."""
    keras_bn = keras.layers.BatchNormalization(**kwargs)
    fused = FusedBatchNormalization(**kwargs)
    keras_bn.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(1)
    weights = [w + rng.normal(0, 0.3, w.shape).astype("float32") for w in keras_bn.get_weights()]
    weights[-1] = np.abs(weights[-1]) + 0.5  # moving variance stays positive
    keras_bn.set_weights(weights)
    fused.set_weights(weights)
    return keras_bn, fused


@pytest.fixture(scope="module")
def x():
    return tf.constant(np.random.default_rng(0).normal(2, 3, (4, 5, 6, 8)).astype("float32"))


def test_training_output_moving_statistics_and_gradients_match_keras(x):
    keras_bn, fused = _pair(x.shape, momentum=0.9)
    weights = tf.range(8, dtype=tf.float32)  # a loss that weighs channels differently
    grads, outputs = [], []
    for layer in (keras_bn, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, training=True)
            loss = tf.reduce_sum(tf.sin(out) * weights)  # non-zero gradients for gamma, beta
        outputs.append(out.numpy())
        grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-5)
    for g_fused, g_keras in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(g_fused, g_keras, rtol=1e-4, atol=1e-4)
    # The moving variance moves towards the biased batch variance, as Keras' does (the op's
    # own batch variance is the unbiased one: uncorrected, this would differ by ~1e-3).
    np.testing.assert_allclose(fused.moving_mean.numpy(), keras_bn.moving_mean.numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(),
                               keras_bn.moving_variance.numpy(), rtol=1e-6)


def test_inference_and_frozen_layers_use_the_moving_statistics(x):
    keras_bn, fused = _pair(x.shape)
    before = fused.moving_mean.numpy().copy()
    np.testing.assert_allclose(fused(x, training=False).numpy(),
                               keras_bn(x, training=False).numpy(), atol=1e-5)
    fused.trainable = keras_bn.trainable = False
    np.testing.assert_allclose(fused(x, training=True).numpy(),
                               keras_bn(x, training=True).numpy(), atol=1e-5)
    np.testing.assert_array_equal(fused.moving_mean.numpy(), before)


def test_other_inputs_fall_back_to_keras():
    flat = tf.constant(np.random.default_rng(2).normal(size=(6, 5)).astype("float32"))
    keras_bn, fused = _pair(flat.shape)
    np.testing.assert_allclose(fused(flat, training=True).numpy(),
                               keras_bn(flat, training=True).numpy(), atol=1e-5)
    channels_first = tf.zeros([2, 3, 4, 4])
    assert FusedBatchNormalization(axis=1)(channels_first, training=True).shape == (2, 3, 4, 4)


def test_mixed_bfloat16_keeps_the_compute_dtype(x):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras_bn, fused = _pair(x.shape)
        bf16 = tf.cast(x, tf.bfloat16)
        out = fused(bf16, training=True)
        assert out.dtype == tf.bfloat16
        np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(),
                                   tf.cast(keras_bn(bf16, training=True), tf.float32).numpy(),
                                   atol=0.1)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_fuse_batch_norm_replaces_every_layer_and_keeps_names():
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3),
                                          pooling="avg", name="base")
    fused = fuse_batch_norm(base)
    assert fused.name == "base"
    def names(model):  # the input layer is renamed by clone_model; it has no weights
        return [layer.name for layer in model.layers[1:]]

    assert names(fused) == names(base)
    kinds = {type(layer) for layer in fused.layers}
    assert FusedBatchNormalization in kinds and keras.layers.BatchNormalization not in kinds
    fused.set_weights(base.get_weights())
    images = tf.random.stateless_uniform([2, 32, 32, 3], [3, 4], -1.0, 1.0)
    np.testing.assert_allclose(fused(images).numpy(), base(images).numpy(), atol=1e-4)
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert fuse_batch_norm(dense) is dense  # nothing to fuse: the model itself


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_built_models_use_the_fused_layer_and_round_trip(name, tmp_path):
    model = models.build_model(name, 32, head_units=(8,), dropout=(0.0,))
    base = model.get_layer("base")
    assert any(isinstance(layer, FusedBatchNormalization) for layer in base.layers)
    assert not any(type(layer) is keras.layers.BatchNormalization for layer in base.layers)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    images = tf.random.stateless_uniform([2, 32, 32, 3], [5, 6], -1.0, 1.0)
    np.testing.assert_allclose(loaded(images).numpy(), model(images).numpy(), atol=1e-5)

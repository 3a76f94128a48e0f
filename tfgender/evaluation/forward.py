"""The one forward pass for inference: the evaluation crop, the model's normalisation and the
model, as training's evaluation, ``bin/evaluate``/``bin/predict`` and the exported files run it.
"""

from __future__ import annotations

import tensorflow as tf

from tfgender.input import augment


def logits(model, inputs, normalization: str, dtype=tf.float32) -> tf.Tensor:
    """The model's float32 logits ``(B, 1)`` of crops already at its input size.

    Args:
        model: a Keras model (or anything called as one) ending in one logit.
        inputs: ``(B, S, S, 3)`` pixels in [0, 255], S the model's input side.
        normalization: the architecture's mode (``augment.normalize``); empty for a model
            that normalises inside (``models.with_normalization``).
        dtype: the compute dtype the inputs are cast to (the run's policy's).
    """
    inputs = tf.cast(inputs, dtype)
    if normalization:
        inputs = augment.normalize(inputs, normalization)
    return tf.cast(model(inputs, training=False), tf.float32)


def eval_logits(model, images, *, image_size: int, normalization: str, crop_fraction=None,
                dtype=tf.float32) -> tf.Tensor:
    """``logits`` of the evaluation view of uint8 images: ``augment.eval_transform``'s centre
    crop (``crop_fraction``: see there), as every evaluation and export takes it."""
    inputs = augment.eval_transform(images, image_size, crop_fraction=crop_fraction)
    return logits(model, inputs, normalization, dtype)

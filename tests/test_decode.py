"""Tests for tfgender.data.decode: the centre crop, DCT scaling and the one resize rule."""

import fakes
import numpy as np
import tensorflow as tf

from tfgender.data import decode


def test_decode_crops_the_centre_square_and_uses_dct_scaling():
    wide = fakes.jpeg_bytes((96, 160), seed=5)
    full = tf.io.decode_jpeg(wide, channels=3).numpy()
    centre = full[:, 32:128]
    for size in (96, 40, 20):  # ratio 1, 2 and 4
        out = decode.decode_and_resize(tf.constant(wide), size).numpy()
        want = tf.image.resize(centre, [size, size], antialias=True).numpy()
        assert out.shape == (size, size, 3) and out.dtype == np.uint8
        assert np.abs(out.astype(float) - want).mean() < 3.0, size
    exact = decode.decode_and_resize(tf.constant(fakes.jpeg_bytes(32, seed=1)), 32).numpy()
    np.testing.assert_array_equal(exact, tf.io.decode_jpeg(fakes.jpeg_bytes(32, seed=1)).numpy())


def test_resize_square_rule():
    image = tf.constant(np.random.default_rng(3).integers(0, 256, (60, 60, 3)), tf.uint8)
    as_float = tf.cast(image, tf.float32)
    np.testing.assert_array_equal(decode.resize_square(image, 60).numpy(), as_float.numpy())
    for size, antialias in ((50, False), (45, False), (44, True), (20, True)):
        want = tf.image.resize(as_float, [size, size], antialias=antialias).numpy()
        np.testing.assert_allclose(decode.resize_square(image, size).numpy(), want, atol=1e-4)

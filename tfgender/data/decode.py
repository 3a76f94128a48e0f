"""Image bytes -> square uint8 images at a given size: the one decode and resize rule.

Conversion (``data/convert.py``, writing records), the input pipeline (reading them) and
``bin/predict``/``bin/evaluate`` on image files all call ``decode_image`` (or, for the JPEG
records, ``decode_and_resize``): the central square, decoded with libjpeg's DCT downscaling
when it is at least twice the target, then ``resize_square``, rounded to uint8.
"""

from __future__ import annotations

import functools

import tensorflow as tf

# libjpeg's DCT-domain scalings, largest first: decoding at 1/8 of an 816 px Adience image
# costs a fraction of a full decode.
JPEG_RATIOS = (8, 4, 2)


def _decode_square(encoded, height, width, ratio: int):
    """Decodes the central square at 1/ratio scale (crop coordinates are in scaled pixels)."""
    scaled_h, scaled_w = (height + ratio - 1) // ratio, (width + ratio - 1) // ratio
    side = tf.minimum(scaled_h, scaled_w)
    window = tf.stack([(scaled_h - side) // 2, (scaled_w - side) // 2, side, side])
    return tf.io.decode_and_crop_jpeg(encoded, window, channels=3, ratio=ratio)


def decode_and_resize(encoded, image_size: int) -> tf.Tensor:
    """Decodes a JPEG's central square and resizes it to ``image_size`` (tf.function-safe).

    The crop is fused into decoding (pixels outside it are never decoded; for a square image
    the window is the whole image), and an image at least twice the target is decoded with
    libjpeg's DCT downscaling (``ratio`` 2, 4 or 8) before ``resize_square``.

    Args:
        encoded: scalar string tensor of JPEG bytes.
        image_size: side of the output.

    Returns:
        uint8 (image_size, image_size, 3).
    """
    shape = tf.io.extract_jpeg_shape(encoded)  # reads the header only
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)
    ratios = (1,) + tuple(sorted(JPEG_RATIOS))
    index = tf.constant(0)
    for k, ratio in enumerate(ratios[1:], start=1):  # ascending: the largest that fits wins
        index = tf.where(short // ratio >= image_size, k, index)
    # ``ratio`` is an op attribute, so one branch per ratio.
    image = tf.switch_case(index, [functools.partial(_decode_square, encoded, height, width, r)
                                   for r in ratios])
    image = tf.cast(tf.clip_by_value(tf.round(resize_square(image, image_size)), 0.0, 255.0),
                    tf.uint8)
    return tf.ensure_shape(image, [image_size, image_size, 3])


def decode_image(encoded, image_size: int) -> tf.Tensor:
    """``decode_and_resize`` for JPEG bytes; PNG, GIF and BMP by the same crop and resize.

    Args:
        encoded: scalar string tensor of image file bytes.
        image_size: side of the output.

    Returns:
        uint8 (image_size, image_size, 3).

    Raises:
        tf.errors.InvalidArgumentError: the bytes are not a decodable image, or have no pixels.
    """
    def other():
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return square_and_resize(image, image_size)

    return tf.cond(tf.io.is_jpeg(encoded), lambda: decode_and_resize(encoded, image_size),
                   other)


def square_and_resize(image, image_size: int) -> tf.Tensor:
    """A decoded image's central square resized by ``resize_square``, rounded to uint8.

    The rule ``decode_image`` applies after decoding a non-JPEG; also for faces cut out of a
    photo (``detect.py``).

    Raises:
        tf.errors.InvalidArgumentError: the image has no pixels.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    tf.debugging.assert_positive(side, message="image has no pixels")
    square = image[(height - side) // 2:(height - side) // 2 + side,
                   (width - side) // 2:(width - side) // 2 + side]
    resized = resize_square(tf.cast(square, tf.float32), image_size)
    return tf.ensure_shape(tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8),
                           [image_size, image_size, 3])


def resize_square(image, image_size: int) -> tf.Tensor:
    """Resizes a square (H, H, C) image to ``image_size``: the one resize rule of every reader.

    Antialiased when shrinking by more than 4/3 (after DCT scaling that is e.g. 408 -> 224);
    plain bilinear for smaller changes, where the filter barely differs and costs a multiple
    of the decode (docs/log.md, input pipeline: 256 px records resized to 224); no
    resampling at all when the size already matches.

    Returns:
        float32 (image_size, image_size, C).
    """
    side = tf.shape(image)[0]
    size = [image_size, image_size]
    return tf.case([(tf.equal(side, image_size), lambda: tf.cast(image, tf.float32)),
                    (side * 3 > image_size * 4,
                     lambda: tf.image.resize(image, size, antialias=True))],
                   default=lambda: tf.image.resize(image, size))

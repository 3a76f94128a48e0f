"""Affine resampling of image batches: crop, flip, rotate and resize in one gather.

The primitives ``augment`` builds on: per-image affine maps, a gather resample (nearest or
bilinear) written for XLA, and ``tf.raw_ops.ImageProjectiveTransformV3`` for comparison.
"""

from __future__ import annotations

import tensorflow as tf

IMPLEMENTATIONS = ("gather", "projective")


def affine_transforms(*, output_size: int, center, side, angle=0.0, flip=1.0) -> tf.Tensor:
    """Builds the output-to-input pixel maps of square crops, one row per image.

    Output pixel (row i, column j) samples the input at column ``a0*j + a1*i + a2`` and row
    ``b0*j + b1*i + b2`` (pixel indices; pixel k covers [k, k+1) so its centre is k + 0.5),
    the first six entries of ``tf.raw_ops.ImageProjectiveTransformV3``'s transforms. The crop
    is the square of ``side`` input pixels centred on ``center``, rotated by ``angle`` and
    mirrored first when ``flip`` is -1, resized to ``output_size``.

    Sign convention: a positive ``angle`` turns the content counter-clockwise as displayed
    (row 0 at the top), like ``np.rot90`` with positive k and ``keras.layers.RandomRotation``.

    Args:
        output_size: Side of the output in pixels.
        center: (B, 2) float crop centres (x, y) in continuous input coordinates.
        side: (B,) float crop sides in input pixels.
        angle: (B,) or scalar rotation in radians.
        flip: (B,) or scalar, -1.0 mirrors horizontally, 1.0 does not.

    Returns:
        A float32 (B, 6) tensor [a0, a1, a2, b0, b1, b2].
    """
    center = tf.cast(center, tf.float32)
    scale = tf.cast(side, tf.float32) / output_size  # input pixels per output pixel
    angle = tf.cast(angle, tf.float32) + tf.zeros_like(scale)
    flip = tf.cast(flip, tf.float32) + tf.zeros_like(scale)
    cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
    a0, a1, b0, b1 = cos * flip, -sin, sin * flip, cos
    half = output_size / 2 - 0.5  # the output centre in pixel indices
    a2 = center[:, 0] - 0.5 - (a0 + a1) * half
    b2 = center[:, 1] - 0.5 - (b0 + b1) * half
    return tf.stack([a0, a1, a2, b0, b1, b2], axis=1)


def resample(images, transforms, output_size: int, *, implementation: str = "gather",
             interpolation: str = "bilinear") -> tf.Tensor:
    """Resamples each image through its affine map, clamping at the edges.

    Args:
        images: (B, H, W, C) images of any real dtype, static H, W and C.
        transforms: (B, 6) maps from ``affine_transforms``.
        output_size: Side of the square output.
        implementation: "gather" (XLA-compilable, the fast one) or "projective"
            (``tf.raw_ops.ImageProjectiveTransformV3``, not XLA-compilable, for comparison).
        interpolation: "bilinear" or "nearest" (the input pixel whose centre is closest).

    Returns:
        float32 (B, output_size, output_size, C).

    Raises:
        ValueError: For an unknown implementation or interpolation.
    """
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"Unknown interpolation {interpolation!r}; use bilinear or nearest")
    if implementation == "projective":
        batch = tf.shape(transforms)[0]
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=tf.cast(images, tf.float32),
            transforms=tf.concat([transforms, tf.zeros([batch, 2])], axis=1),
            output_shape=tf.constant([output_size, output_size]), fill_value=0.0,
            interpolation=interpolation.upper(), fill_mode="NEAREST")
    if implementation != "gather":
        raise ValueError(f"Unknown implementation {implementation!r}; use one of {IMPLEMENTATIONS}")
    if interpolation == "nearest":
        return _resample_nearest(images, transforms, output_size)
    return _resample_2d(images, transforms, output_size)


def _neighbours(coord, size: int):
    """Clamps coordinates to the image (edge replication) and splits them into cell and weight."""
    coord = tf.clip_by_value(coord, 0.0, size - 1.0)
    # Capping the cell at size - 2 keeps cell + 1 inside; the weight is then 1 at the last pixel.
    cell = tf.minimum(tf.floor(coord), max(size - 2, 0))
    return tf.cast(cell, tf.int32), coord - cell


def _lerp(a, b, weight):
    return a + weight * (b - a)


def _sample_coordinates(transforms, output_size):
    """Input (x, y) pixel-index coordinates of every output pixel, each (B, O, O)."""
    grid = tf.range(output_size, dtype=tf.float32)
    t = transforms[:, :, None, None]
    x = t[:, 0] * grid + t[:, 1] * grid[:, None] + t[:, 2]
    y = t[:, 3] * grid + t[:, 4] * grid[:, None] + t[:, 5]
    return x, y


def _resample_2d(images, transforms, output_size):
    _, height, width, channels = images.shape
    x, y = _sample_coordinates(transforms, output_size)
    x0, wx = _neighbours(x, width)
    y0, wy = _neighbours(y, height)
    batch = tf.shape(images)[0]
    base = tf.range(batch)[:, None, None] * (height * width)
    top_left = base + y0 * width + x0
    # Measured here (224 px, batch 64, XLA, 2 cores): four gathers of uint8 rows of the flat
    # (B*H*W, C) image, converted after gathering, beat float32 gathers, one stacked gather,
    # per-channel scalar gathers and gathers of pre-built 2x2 patches; a separable rows-then-
    # columns version was no faster than this once XLA folds a constant zero rotation.
    flat = tf.reshape(images, [-1, channels])
    dx = 1 if width > 1 else 0
    dy = width if height > 1 else 0

    def pixel(index):
        return tf.cast(tf.gather(flat, index), tf.float32)

    wx, wy = wx[..., None], wy[..., None]
    top = _lerp(pixel(top_left), pixel(top_left + dx), wx)
    bottom = _lerp(pixel(top_left + dy), pixel(top_left + dy + dx), wx)
    return _lerp(top, bottom, wy)


def nearest_source(transforms, output_size, height, width):
    """Each output pixel's nearest input pixel, as ``row * width + col`` within its image.

    Rounds half up, as ImageProjectiveTransformV3's NEAREST does, and replicates the edges.
    The map is uint16 when every index fits (images up to 256x256), else int32: a smaller map
    to write and read back when it is materialised between two XLA programs
    (``augment.Augmentation``).
    """
    x, y = _sample_coordinates(transforms, output_size)
    col = tf.cast(tf.clip_by_value(tf.floor(x + 0.5), 0.0, width - 1.0), tf.int32)
    row = tf.cast(tf.clip_by_value(tf.floor(y + 0.5), 0.0, height - 1.0), tf.int32)
    dtype = tf.uint16 if height * width <= 2**16 else tf.int32
    return tf.cast(row * width + col, dtype)


def gather_sources(images, source):
    """Gathers pixels by the per-image indices of ``nearest_source``, as float32."""
    _, height, width, channels = images.shape
    base = tf.range(tf.shape(images)[0])[:, None, None] * (height * width)
    index = base + tf.cast(source, tf.int32)
    return tf.cast(tf.gather(tf.reshape(images, [-1, channels]), index), tf.float32)


def _resample_nearest(images, transforms, output_size):
    _, height, width, _ = images.shape
    return gather_sources(images, nearest_source(transforms, output_size, height, width))


def crop_and_flip(images, offsets, flip, output_size):
    """Integer-offset crops with optional mirroring: pure gathers, no interpolation."""
    grid = tf.range(output_size)
    cols = offsets[:, 0:1] + tf.where(flip[:, None] < 0, output_size - 1 - grid, grid)
    rows = offsets[:, 1:2] + grid
    out = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.cast(tf.gather(out, cols, axis=2, batch_dims=1), tf.float32)

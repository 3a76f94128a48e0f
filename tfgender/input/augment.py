"""Batched, on-device augmentation, normalisation and evaluation crops for cached uint8 batches.

The resampling itself (affine maps, gathers) is in ``tfgender.input.resample``.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from tfgender.choices import AUGMENT_INTERPOLATIONS as INTERPOLATIONS
from tfgender.input.resample import (
    IMPLEMENTATIONS,
    affine_transforms,
    crop_and_flip,
    gather_sources,
    nearest_source,
    resample,
)

# Faces in every dataset here are upright (Adience and CelebA are landmark-aligned, UTKFace is
# cropped and aligned), so large rotations only teach poses that never occur at test time; the
# study's 90 degrees is far outside that. +-15 degrees covers residual head tilt and alignment
# error, the range commonly used for aligned-face classifiers.
DEFAULT_MAX_ROTATION_DEGREES = 15.0
# ImageNet RGB means in 0-255 units (Levi & Hassner subtract a mean image; a per-channel mean is
# the usual stand-in and keeps the input independent of the cache size).
IMAGENET_RGB_MEAN = (123.68, 116.78, 103.94)
# keras.applications.resnet50.preprocess_input ("caffe" mode) subtracts these from BGR input.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# An explicit algorithm: "auto_select" picks different generators with and without XLA, so the
# same seed would give different augmentations in a jit-compiled step and in eager debugging.
# Even with philox, XLA turns bits into floats differently; integer draws agree (see _uniform).
RNG = "philox"
_UNIFORM_BITS = 24  # float32 has a 24-bit significand: every draw is exact


def make_step_seed(seed: int, step, replica_id=0) -> tf.Tensor:
    """Derives the stateless seed of one training step on one replica.

    Hash-folding (rather than adding) keeps the seeds of different (step, replica) pairs
    distinct whatever the number of replicas.

    Args:
        seed: The run's global seed (Python int).
        step: Step counter, a scalar integer tensor or int (e.g. ``optimizer.iterations``).
        replica_id: Replica index in the sync group, a scalar integer tensor or int.

    Returns:
        An int64 tensor of shape [2], usable as the ``seed`` of ``tf.random.stateless_*``.
    """
    base = tf.constant([seed, 0], tf.int64)
    step_seed = tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64), alg=RNG)
    return tf.random.experimental.stateless_fold_in(step_seed, tf.cast(replica_id, tf.int64),
                                                    alg=RNG)


def _uniform(shape, seed, low=0.0, high=1.0):
    """Uniform floats in [low, high) that are identical with and without XLA."""
    bits = tf.random.stateless_uniform(shape, seed, 0, 2**_UNIFORM_BITS, tf.int32, alg=RNG)
    return low + (high - low) * (tf.cast(bits, tf.float32) * 2.0**-_UNIFORM_BITS)


def _random_crops(seeds, batch, size: int, output_size: int, crop_scale):
    """Draws crop windows: integer offsets (or None), centres (B, 2) and sides (B,)."""
    if crop_scale is None:
        side = min(output_size, size)
        offsets = tf.random.stateless_uniform([batch, 2], seeds[0], 0, size - side + 1, tf.int32,
                                              alg=RNG)
        return offsets, tf.cast(offsets, tf.float32) + side / 2, tf.fill([batch], float(side))
    low, high = crop_scale
    sides = _uniform([batch], seeds[0], low, high) * size
    room = _uniform([batch, 2], seeds[1])  # where the window sits in the space left around it
    return None, sides[:, None] / 2 + room * (size - sides[:, None]), sides


def _check_square(images):
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"Augmentation expects square images, got shape {images.shape}")


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """A run's training augmentation: flip, crop, rotation and resize in one resample, then
    brightness, the cast to the compute dtype and optionally the model's normalisation.

    It works in two stages. ``plan`` draws the random parameters of a batch and turns them
    into what the resample needs (for nearest sampling, each output pixel's source index);
    ``render`` reads the pixels. ``compiled()`` runs them as two XLA programs: the plan needs
    only the batch's shape, so it no longer waits for the batch and leaves the render's
    critical path, which measured faster than one fused program (``benchmarks/levers.py
    augment_pipeline``; the figures are in docs/benchmarks.md, not here, as they depend on the CPU).
    Inside a ``jit_compile``d step they fuse again.

    Attributes:
        output_size: Side of the output images.
        flip: Mirror half of the images horizontally.
        max_rotation_degrees: Rotation drawn uniformly in +-this; 0 disables it.
        brightness_range: (low, high) multiplicative brightness factor range; None disables.
        contrast_range: (low, high) contrast factor range; None disables. Each image is
            blended with its mean grey level, ``mean + c * (x - mean)``, as torchvision's
            ``ColorJitter`` does.
        saturation_range: (low, high) saturation factor range; None disables. Each pixel is
            blended with its own grey value, ``grey + s * (x - grey)`` (torchvision's rule).
        hue_delta: Hue rotated by a uniform fraction of the colour circle in +-this (at most
            0.5); 0 disables it.
        crop_scale: None for a Levi & Hassner crop (``output_size`` pixels at a random integer
            offset, no rescaling; the whole image resized if S < output_size); or (low, high)
            for a square crop whose side is a uniform fraction of S in that range, at a random
            position inside the image, resized to ``output_size``.
        dtype: Output dtype (the compute dtype of the mixed precision policy).
        implementation: See ``tfgender.input.resample.resample``.
        interpolation: "bilinear", "nearest", or "auto": nearest when the map keeps the
            scale (``crop_scale=None`` and S >= output_size: flips, integer crops and rotation,
            where a nearest sample lies within half a pixel of the exact point, as
            torchvision's ``RandomRotation`` does by default), bilinear when it resizes.
            Nearest measured faster than bilinear (docs/log.md, input pipeline).
        normalization: A ``normalize`` mode applied last, or None for [0, 255] output.
        erasing_probability: Random erasing (Zhong et al., 2020): the chance that an image
            gets one rectangle filled with the ImageNet mean colour (0 after the models'
            normalisations, as torchvision's and timm's default fill), drawn after the resample
            and colour changes; 0 disables it.
        erasing_scale: (low, high) range of the rectangle's area as a fraction of the image;
            its aspect ratio is log-uniform in [0.3, 3.3], the paper's range.
    """

    output_size: int
    flip: bool = True
    max_rotation_degrees: float = DEFAULT_MAX_ROTATION_DEGREES
    brightness_range: tuple[float, float] | None = (0.8, 1.2)
    contrast_range: tuple[float, float] | None = None
    saturation_range: tuple[float, float] | None = None
    hue_delta: float = 0.0
    crop_scale: tuple[float, float] | None = None
    dtype: tf.DType = tf.float32
    implementation: str = "gather"
    interpolation: str = "auto"
    normalization: str | None = None
    erasing_probability: float = 0.0
    erasing_scale: tuple[float, float] = (0.02, 0.33)

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"Unknown interpolation {self.interpolation!r}; "
                             f"use one of {INTERPOLATIONS}")
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(f"Unknown implementation {self.implementation!r}; "
                             f"use one of {IMPLEMENTATIONS}")
        if self.crop_scale is not None:
            low, high = self.crop_scale
            if not 0 < low <= high <= 1:
                raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, "
                                 f"got {self.crop_scale}")
        for name in ("brightness_range", "contrast_range", "saturation_range"):
            value = getattr(self, name)
            if value is not None and not (len(value) == 2 and 0 <= value[0] <= value[1]):
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high, got {value}")
        if not 0 <= self.erasing_probability <= 1:
            raise ValueError(f"erasing_probability must be in [0, 1], got "
                             f"{self.erasing_probability}")
        low, high = self.erasing_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"erasing_scale must satisfy 0 < low <= high <= 1, "
                             f"got {self.erasing_scale}")
        if not 0 <= self.hue_delta <= 0.5:
            raise ValueError(f"hue_delta must be in [0, 0.5], got {self.hue_delta}")
        if self.normalization is not None and self.normalization not in NORMALIZATIONS:
            raise ValueError(f"Unknown normalization {self.normalization!r}; "
                             f"use one of {NORMALIZATIONS}")

    def _sampling(self, size: int) -> tuple[str, str]:
        """How a batch of side ``size`` is resampled: the method, "crop" (integer gathers, no
        interpolation), "nearest" (a source index per output pixel) or "transform"
        (``resample`` of the affine maps); and the interpolation ``auto`` resolves to."""
        same_scale = self.crop_scale is None and self.output_size <= size
        interpolation = self.interpolation
        if interpolation == "auto":
            interpolation = "nearest" if same_scale else "bilinear"
        gather = self.implementation == "gather"
        if gather and same_scale and not self.max_rotation_degrees:
            return "crop", interpolation  # every sample is on a pixel centre: exact, and faster
        if gather and interpolation == "nearest":
            return "nearest", interpolation
        return "transform", interpolation

    def plan(self, seed, batch, size: int) -> dict:
        """Draws a batch's random parameters and prepares the resample. It needs only the
        batch's shape, so under ``compiled()`` it runs while the batch is still being read.

        Args:
            seed: Shape-[2] integer seed, e.g. from ``make_step_seed``.
            batch: B, an int or a scalar int32 tensor.
            size: S of the (B, S, S, 3) input.

        Returns:
            A dict of tensors for ``render``.
        """
        seeds = tf.random.experimental.stateless_split(seed, 5, alg=RNG)
        mirror = tf.ones([batch])
        if self.flip:
            mirror = tf.where(_uniform([batch], seeds[0]) < 0.5, -1.0, 1.0)
        angle = tf.zeros([batch])  # a constant XLA folds away: the resample gets cheaper
        if self.max_rotation_degrees:
            limit = math.radians(self.max_rotation_degrees)
            angle = _uniform([batch], seeds[1], -limit, limit)
        offsets, center, sides = _random_crops(seeds[2:4], batch, size, self.output_size,
                                               self.crop_scale)
        plan = {}
        if self.brightness_range is not None:
            plan["brightness"] = _uniform([batch], seeds[4], *self.brightness_range)
        # Their own seeds (folded from the batch's), so the other draws stay as they were.
        colour = tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(seed, 1, alg=RNG), 3, alg=RNG)
        if self.contrast_range is not None:
            plan["contrast"] = _uniform([batch], colour[0], *self.contrast_range)
        if self.saturation_range is not None:
            plan["saturation"] = _uniform([batch], colour[1], *self.saturation_range)
        if self.hue_delta:
            plan["hue"] = _uniform([batch], colour[2], -self.hue_delta, self.hue_delta)
        if self.erasing_probability:
            plan["erase"] = _erasing_boxes(tf.random.experimental.stateless_fold_in(
                seed, 2, alg=RNG), batch, self.output_size, self.erasing_probability,
                self.erasing_scale)
        method, _ = self._sampling(size)
        if method == "crop":
            plan.update(offsets=offsets, mirror=mirror)
            return plan
        transforms = affine_transforms(output_size=self.output_size, center=center, side=sides,
                                       angle=angle, flip=mirror)
        if method == "nearest":
            plan["source"] = nearest_source(transforms, self.output_size, size, size)
        else:
            plan["transforms"] = transforms
        return plan

    def render(self, images, plan) -> tf.Tensor:
        """Applies a ``plan`` to its batch: (B, S, S, 3) uint8 or float images in [0, 255].

        Returns:
            (B, output_size, output_size, 3) tensor of ``dtype``: [0, 255] pixel units, or
            normalised for the model when ``normalization`` is set.
        """
        method, interpolation = self._sampling(images.shape[1])
        if method == "crop":
            out = crop_and_flip(images, plan["offsets"], plan["mirror"], self.output_size)
        elif method == "nearest":
            out = gather_sources(images, plan["source"])
        else:
            out = resample(images, plan["transforms"], self.output_size,
                           implementation=self.implementation,
                           interpolation=interpolation)
        if "brightness" in plan:  # pixels and factors are >= 0: only the top needs clipping
            out = tf.minimum(out * plan["brightness"][:, None, None, None], 255.0)
        out = _colour_jitter(out, plan)
        if "erase" in plan:
            out = _erase(out, plan["erase"])
        out = tf.cast(out, self.dtype)
        if self.normalization is not None:
            out = normalize(out, self.normalization)
        return out

    def __call__(self, images, seed) -> tf.Tensor:
        """Plans and renders in the caller's context (eager, graph or one XLA program)."""
        _check_square(images)
        batch = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
        return self.render(images, self.plan(seed, batch, images.shape[1]))

    def compiled(self):
        """Returns ``fn(images, seed)`` running ``plan`` and ``render`` as two XLA programs.

        A batch of unknown size runs as one XLA program instead (XLA needs the plan's shapes
        at compile time); training batches are static (``drop_remainder``).
        """
        plan = tf.function(self.plan, jit_compile=True)
        render = tf.function(self.render, jit_compile=True)
        whole = tf.function(self, jit_compile=True)

        def run(images, seed):
            _check_square(images)
            if images.shape[0] is None:
                return whole(images, seed)
            return render(images, plan(seed, images.shape[0], images.shape[1]))

        return run


def make_augmentation(config, setup, dtype=tf.float32,
                      normalization: str | None = None) -> Augmentation:
    """The run's training augmentation (flip, crop, rotation, brightness, colour, resize to
    the model size), the one the step applies (normalised) and TensorBoard shows (in [0, 255])."""
    return Augmentation(
        output_size=setup.image_size, flip=config.flip,
        max_rotation_degrees=config.max_rotation,
        brightness_range=tuple(config.brightness) if config.brightness else None,
        contrast_range=tuple(config.contrast) if config.contrast else None,
        saturation_range=tuple(config.saturation) if config.saturation else None,
        hue_delta=config.hue,
        crop_scale=tuple(config.crop_scale) if config.crop_scale else None,
        interpolation=config.augment_interpolation, dtype=dtype, normalization=normalization,
        erasing_probability=config.random_erasing,
        # Read only with erasing on: --erasing_scale= (empty) is then no error.
        **({"erasing_scale": tuple(config.erasing_scale)} if config.random_erasing else {}))


_ERASING_LOG_RATIO = (math.log(0.3), math.log(1 / 0.3))


def _erasing_boxes(seed, batch, size: int, probability: float, scale) -> tf.Tensor:
    """(B, 4) float boxes [top, left, bottom, right) in pixels; empty for images not erased."""
    seeds = tf.random.experimental.stateless_split(seed, 5, alg=RNG)
    area = _uniform([batch], seeds[0], *scale) * size * size
    ratio = tf.exp(_uniform([batch], seeds[1], *_ERASING_LOG_RATIO))
    height = tf.minimum(tf.sqrt(area * ratio), float(size))
    width = tf.minimum(tf.sqrt(area / ratio), float(size))
    top = _uniform([batch], seeds[2]) * (size - height)
    left = _uniform([batch], seeds[3]) * (size - width)
    erased = tf.cast(_uniform([batch], seeds[4]) < probability, tf.float32)
    return tf.stack([top, left, top + height * erased, left + width * erased], axis=1)


def _erase(images, boxes) -> tf.Tensor:
    """Fills each image's box (pixel centres inside it) with the ImageNet mean colour."""
    size = images.shape[1] if images.shape[1] is not None else tf.shape(images)[1]
    centres = tf.range(tf.cast(size, tf.float32)) + 0.5
    rows = (centres[None, :] >= boxes[:, 0:1]) & (centres[None, :] < boxes[:, 2:3])
    cols = (centres[None, :] >= boxes[:, 1:2]) & (centres[None, :] < boxes[:, 3:4])
    inside = rows[:, :, None, None] & cols[:, None, :, None]
    fill = tf.constant(IMAGENET_RGB_MEAN, images.dtype)
    return tf.where(inside, fill, images)


def _colour_jitter(images, plan) -> tf.Tensor:
    """Contrast, saturation and hue of a plan, in that order, on [0, 255] pixels."""
    if not {"contrast", "saturation", "hue"} & plan.keys():
        return images
    out = tf.cast(images, tf.float32)
    if "contrast" in plan:
        mean = tf.reduce_mean(tf.image.rgb_to_grayscale(out), axis=[1, 2, 3], keepdims=True)
        out = tf.clip_by_value(mean + plan["contrast"][:, None, None, None] * (out - mean),
                               0.0, 255.0)
    if "saturation" in plan:
        grey = tf.image.rgb_to_grayscale(out)
        out = tf.clip_by_value(grey + plan["saturation"][:, None, None, None] * (out - grey),
                               0.0, 255.0)
    if "hue" in plan:
        hue, saturation, value = tf.unstack(tf.image.rgb_to_hsv(out / 255.0), axis=-1)
        hue = tf.math.floormod(hue + plan["hue"][:, None, None], 1.0)
        out = tf.image.hsv_to_rgb(tf.stack([hue, saturation, value], axis=-1)) * 255.0
    return out


def augment_batch(images, seed, **options) -> tf.Tensor:
    """Randomly flips, crops, rotates, resizes and brightens a batch in one resample.

    Flip, crop, rotation and resize make one affine map per image, applied by one resample;
    brightness multiplies the result by a per-image factor and clips to [0, 255].
    With no rotation and ``crop_scale=None`` every sample falls on a pixel centre, so the
    "gather" implementation then crops and mirrors by integer gathers without interpolating
    (about twice as fast; the result is identical).

    Args:
        images: (B, S, S, 3) uint8 (or float in [0, 255]) batch; B may be unknown.
        seed: Shape-[2] integer seed, e.g. from ``make_step_seed``.
        **options: The fields of ``Augmentation`` (``output_size`` is required).

    Returns:
        (B, output_size, output_size, 3) tensor of ``dtype`` in [0, 255] pixel units.
    """
    return Augmentation(**options)(images, seed)


# Each architecture's input normalisation (``models.ModelSpec.normalization`` names one):
# [0, 255] RGB images in, the model's expected range out, dtype kept.
NORMALIZERS = {
    # Subtract the per-channel RGB ImageNet mean (Levi & Hassner's mean image, per channel).
    "levi_hassner_mean": lambda x: x - tf.constant(IMAGENET_RGB_MEAN, x.dtype),
    # ``keras.applications.resnet50.preprocess_input``: RGB to BGR, then the BGR mean.
    "resnet50_caffe": lambda x: tf.reverse(x, axis=[-1]) - tf.constant(CAFFE_BGR_MEAN, x.dtype),
    # x / 127.5 - 1, the range the ImageNet MobileNetV2 expects.
    "mobilenet_v2": lambda x: x / tf.constant(127.5, x.dtype) - tf.constant(1.0, x.dtype),
}
NORMALIZATIONS = tuple(NORMALIZERS)


def normalize(images, mode: str) -> tf.Tensor:
    """Maps (..., 3) RGB float images in [0, 255] to a model's input range (``NORMALIZERS``).

    Raises:
        ValueError: For a mode not in ``NORMALIZERS``.
    """
    if mode not in NORMALIZERS:
        raise ValueError(f"Unknown normalization {mode!r}; use one of {NORMALIZATIONS}")
    return NORMALIZERS[mode](images)


def _resize_to_cover(images, size: int):
    """Resizes the whole image to at least ``size`` on its shorter side, when it is smaller."""
    height, width = images.shape[1], images.shape[2]
    if min(height, width) >= size:
        return images
    if height != width:
        raise ValueError(f"Cannot upsample non-square images {images.shape} to {size}")
    batch = tf.shape(images)[0]
    transforms = affine_transforms(output_size=size, center=tf.fill([batch, 2], height / 2),
                                   side=tf.fill([batch], float(height)))
    out = resample(images, transforms, size)
    if images.dtype.is_integer:
        out = tf.round(out)
    return tf.saturate_cast(out, images.dtype)


def center_crop(images, size: int) -> tf.Tensor:
    """Takes the central ``size`` x ``size`` square, first upsampling images smaller than it.

    Args:
        images: (B, H, W, C) images; B may be unknown.
        size: Side of the crop.

    Returns:
        (B, size, size, C) of the input dtype.
    """
    images = _resize_to_cover(images, size)
    top = (images.shape[1] - size) // 2
    left = (images.shape[2] - size) // 2
    return images[:, top:top + size, left:left + size]


def oversample_crops(images, size: int) -> tf.Tensor:
    """Levi & Hassner's 10-crop oversampling (Caffe's ``caffe.io.oversample`` order).

    Args:
        images: (B, H, W, C) images; upsampled first if smaller than ``size``.
        size: Side of each crop.

    Returns:
        (B, 10, size, size, C) of the input dtype: top-left, top-right, bottom-left,
        bottom-right and centre crops, then the same five mirrored horizontally.
    """
    images = _resize_to_cover(images, size)
    height, width = images.shape[1], images.shape[2]
    corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size),
               ((height - size) // 2, (width - size) // 2)]
    crops = tf.stack([images[:, y:y + size, x:x + size] for y, x in corners], axis=1)
    return tf.concat([crops, tf.reverse(crops, axis=[3])], axis=1)


def eval_transform(images, output_size: int, *, crop_fraction: float | None = None,
                   dtype=tf.float32) -> tf.Tensor:
    """What evaluation feeds the model: the deterministic counterpart of ``augment_batch``.

    Args:
        images: (B, S, S, 3) uint8 or float images in [0, 255].
        output_size: Side the model expects.
        crop_fraction: None matches ``augment_batch(crop_scale=None)``: the central
            ``output_size`` pixels (identity when S == output_size). A fraction f matches
            training with ``crop_scale`` around f: the central f*S square resized to
            ``output_size`` (1.0 resizes the whole image).
        dtype: Output dtype.

    Returns:
        (B, output_size, output_size, 3) of ``dtype`` in [0, 255].
    """
    if crop_fraction is None:
        return tf.cast(center_crop(images, output_size), dtype)
    size = images.shape[1]
    batch = tf.shape(images)[0]
    transforms = affine_transforms(output_size=output_size, center=tf.fill([batch, 2], size / 2),
                                   side=tf.fill([batch], crop_fraction * size))
    return tf.cast(resample(images, transforms, output_size), dtype)

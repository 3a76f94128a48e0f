"""MobileNetV2 (keras.applications) as a pooled feature extractor under the shared dense head."""

from __future__ import annotations

import keras

from tfgender.models import head

# [0, 255] -> [-1, 1], the range the ImageNet weights expect.
NORMALIZATION = "mobilenet_v2"
# keras.applications refuses smaller inputs; 32 is also MobileNetV2's total stride.
MIN_IMAGE_SIZE = 32
# Sizes and width multipliers keras.applications publishes ImageNet weights for.
IMAGENET_SIZES = (96, 128, 160, 192, 224)
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def imagenet_weights_file(image_size: int, alpha: float = 1.0) -> str:
    """Returns the exact file name keras.applications.MobileNetV2 downloads (no top).

    Like Keras, sizes without published weights use the 224 file; convolution weights do
    not depend on the input size, so they load into any size (``imagenet_weights_files``
    falls back to the 224 file where a size's own is not in the cache).

    Args:
        image_size: Input side in pixels.
        alpha: Width multiplier, one of ``IMAGENET_ALPHAS``.

    Returns:
        E.g. ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5``.

    Raises:
        ValueError: No ImageNet weights exist for ``alpha``.
    """
    if alpha not in IMAGENET_ALPHAS:
        raise ValueError(
            f"MobileNetV2 ImageNet weights need alpha in {IMAGENET_ALPHAS}, got {alpha}"
        )
    rows = image_size if image_size in IMAGENET_SIZES else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"


def imagenet_weights_files(image_size: int, alpha: float = 1.0) -> tuple[str, ...]:
    """The cached files that hold these ImageNet weights, best first: the size's own (trained
    at that size, as Keras publishes them for ``IMAGENET_SIZES``), then the 224 one."""
    own = imagenet_weights_file(image_size, alpha)
    fallback = imagenet_weights_file(224, alpha)
    return (own,) if own == fallback else (own, fallback)


def build_mobilenet_v2(image_size: int, *, alpha: float, weights_path: str | None = None,
                       freeze_base: bool = False, **options) -> keras.Model:
    """Builds MobileNetV2 (global average pooled) + dense head ending in one float32 logit.

    The base is always constructed with ``weights=None`` and weights are then loaded from a
    local file, so nothing is ever downloaded. Inputs must be scaled to [-1, 1].

    Args:
        image_size: Input side in pixels, at least 32.
        weights_path: None (random) or the local ``.h5`` / ``.weights.h5`` file of the base
            that ``models.resolve_weights`` found (``build_model`` resolves it once).
        freeze_base: Make the base non-trainable, leaving only the head to train.
        alpha: Width multiplier of the base.
        **options: The head's (``head.HEAD_OPTIONS``: ``head_units``, ``dropout``,
            ``weight_decay`` on the head's kernels only, ``activation``; see
            ``head.attach_head``); other builders' options are ignored.

    Returns:
        An uncompiled ``keras.Model`` whose nested MobileNetV2 layer is named ``"base"``.

    Raises:
        ValueError: ``image_size`` is below 32.
        head.WeightsError: the weights file is not of this model.
    """
    base = keras.applications.MobileNetV2(
        include_top=False,
        weights=None,
        input_shape=(image_size, image_size, 3),
        alpha=alpha,
        pooling="avg",
        name=head.BASE_LAYER,
    )
    return head.attach_head(base, image_size, name="mobilenet_v2", weights_path=weights_path,
                            freeze_base=freeze_base, **head.head_options(options))

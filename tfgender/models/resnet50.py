"""ResNet-50 (keras.applications) as a pooled feature extractor under the shared dense head."""

from __future__ import annotations

import keras

from tfgender.models import head

# keras.applications refuses smaller inputs; 32 is also ResNet-50's total stride, so the
# last stage's map is 1x1 there.
MIN_IMAGE_SIZE = 32
# keras.applications.resnet50.preprocess_input: RGB -> BGR, the ImageNet mean subtracted.
NORMALIZATION = "resnet50_caffe"
# The exact name keras.applications.ResNet50 downloads for include_top=False.
IMAGENET_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


def imagenet_weights_files(image_size: int, alpha: float = 1.0) -> tuple[str, ...]:
    """The file keras.applications keeps ResNet-50's ImageNet weights in (any size)."""
    del image_size, alpha
    return (IMAGENET_WEIGHTS_FILE,)


def build_resnet50(image_size: int, *, weights_path: str | None = None,
                   freeze_base: bool = False, **options) -> keras.Model:
    """Builds ResNet-50 (global average pooled) + dense head ending in one float32 logit.

    The base is always constructed with ``weights=None`` and weights are then loaded from a
    local file, so nothing is ever downloaded. Inputs must be normalised the Caffe way
    (``keras.applications.resnet50.preprocess_input``: RGB -> BGR, ImageNet mean subtracted).

    Args:
        image_size: Input side in pixels, at least 32.
        weights_path: None (random) or the local ``.h5`` / ``.weights.h5`` file of the base
            that ``models.resolve_weights`` found (``build_model`` resolves it once).
        freeze_base: Make the base non-trainable, leaving only the head to train.
        **options: The head's (``head.HEAD_OPTIONS``: ``head_units``, ``dropout``,
            ``weight_decay`` on the head's kernels only, ``activation``; see
            ``head.attach_head``); other builders' options (e.g. ``alpha``) are ignored.

    Returns:
        An uncompiled ``keras.Model`` whose nested ResNet-50 layer is named ``"base"``.

    Raises:
        ValueError: ``image_size`` is below 32.
        head.WeightsError: the weights file is not of this model.
    """
    base = keras.applications.ResNet50(
        include_top=False,
        weights=None,
        input_shape=(image_size, image_size, 3),
        pooling="avg",
        name=head.BASE_LAYER,
    )
    return head.attach_head(base, image_size, name="resnet50", weights_path=weights_path,
                            freeze_base=freeze_base, **head.head_options(options))

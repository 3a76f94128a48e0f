"""The model registry: architecture name -> ``ModelSpec`` (builder and input facts), and
``build_model``. A fourth architecture is one module and one ``MODELS`` entry (and a
normaliser in ``input/augment.py`` if none of the existing ones fits).

Every builder takes ``(image_size, *, weights, freeze_base, ..., **options)``: the options
every run passes (``head_units``, ``dropout``, ``weight_decay``, ``activation``, ``alpha``, ...)
and ignores the ones its architecture has not; it returns an uncompiled ``keras.Model``
ending in ``(batch, 1)`` float32 logits, also under a mixed precision policy.

``ModelSpec.normalization`` names the input normalisation that ``tfgender/input/augment.py``
implements for each architecture:

- ``"levi_hassner_mean"``: subtract a per-channel mean from [0, 255] pixels. The original
  Caffe model subtracted a BGR mean image; the network is trained from scratch here, so the
  channel order is not required to be BGR.
- ``"resnet50_caffe"``: ``keras.applications.resnet50.preprocess_input`` semantics (RGB ->
  BGR, then subtract the ImageNet channel means), which the ImageNet weights expect.
- ``"mobilenet_v2"``: scale [0, 255] pixels to [-1, 1], which the ImageNet weights expect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from tfgender.models import levi_hassner, mobilenet_v2, resnet50
from tfgender.models.head import (
    WeightsError,
    check_image_size,
    resolve_base_weights,
    set_batch_norm_momentum,
    set_layer_policies,
    walk_layers,
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One architecture: how to build it and what the input pipeline must know about it.

    Attributes:
        build: The builder, ``(image_size, **options) -> keras.Model`` (see the module doc).
        default_image_size: Input side the architecture was designed for.
        min_image_size: Smallest input side it accepts without the feature map collapsing.
        normalization: Key of the input normalisation in ``tfgender.input.augment.NORMALIZERS``.
        imagenet_file: ``(image_size, alpha) -> names`` of the files keras.applications keeps
            this architecture's ImageNet weights in (no top), best first; None when it has
            none.
    """

    build: Callable[..., keras.Model]
    default_image_size: int
    min_image_size: int
    normalization: str
    imagenet_file: Callable[[int, float], tuple[str, ...]] | None = None


def _spec(module, build, normalization: str, imagenet_file=None) -> ModelSpec:
    return ModelSpec(build, module.DEFAULT_IMAGE_SIZE, module.MIN_IMAGE_SIZE, normalization,
                     imagenet_file)


MODELS: dict[str, ModelSpec] = {
    "levi_hassner": _spec(levi_hassner, levi_hassner.build_levi_hassner, "levi_hassner_mean"),
    "resnet50": _spec(resnet50, resnet50.build_resnet50, "resnet50_caffe",
                      lambda image_size, alpha: (resnet50.IMAGENET_WEIGHTS_FILE,)),
    "mobilenet_v2": _spec(mobilenet_v2, mobilenet_v2.build_mobilenet_v2, "mobilenet_v2",
                          mobilenet_v2.imagenet_weights_files),
}


def resolve_weights(name: str, weights: str | None, image_size: int,
                    alpha: float = 1.0) -> str | None:
    """The local file a build of ``name`` would load ``weights`` from, checked without
    building anything: what a program calls before it spends time on data and precision.

    Args:
        name: A key of ``MODELS``.
        weights: None or empty (random), ``"imagenet"`` (the Keras cache) or a file path.
        image_size: Input side (MobileNetV2's file name depends on it).
        alpha: Width multiplier (likewise).

    Returns:
        None for random initialisation, else the path of an existing HDF5 file.

    Raises:
        WeightsError: see ``head.resolve_base_weights``; also ImageNet weights asked for a
            width multiplier that has none.
    """
    spec = MODELS[name]
    files = ()
    if weights == "imagenet" and spec.imagenet_file is not None:
        try:
            files = spec.imagenet_file(image_size, alpha)
        except ValueError as err:
            raise WeightsError(str(err)) from None
    return resolve_base_weights(weights or None, files, name)


def build_model(name: str, image_size: int, *, precision_name: str = "",
                **kwargs) -> keras.Model:
    """Builds a registered architecture.

    Args:
        name: A key of ``MODELS``.
        image_size: Input side in pixels, at least ``MODELS[name].min_image_size``.
        precision_name: The run's precision (``devices.POLICIES``): built under the global
            Keras policy, then given the per-layer policies the name asks for
            (``set_layer_policies``: ``mixed_bfloat16_matmul``'s matmul layers).
        **kwargs: Builder options: ``head_units``, ``dropout``, ``weight_decay``,
            ``activation``, ``weights``, ``freeze_base`` and, for MobileNetV2 and Levi &
            Hassner, ``alpha``.

    Returns:
        An uncompiled ``keras.Model`` ending in ``(batch, 1)`` float32 logits.

    Raises:
        ValueError: Unknown ``name`` (the message lists the known ones) or ``image_size``
            below the minimum (the message says it).
        WeightsError: Requested weights are missing locally, unreadable or of another model.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    check_image_size(name, image_size, spec.min_image_size)
    # The one place a build turns "imagenet" or a path into a file (the registry's names).
    path = resolve_weights(name, kwargs.pop("weights", None), image_size,
                           kwargs.get("alpha", 1.0))
    return set_layer_policies(spec.build(image_size, weights_path=path, **kwargs),
                              precision_name)


def base_layers(model: keras.Model) -> list:
    """The feature extractor of a built model: what fine-tuning freezes, then unfreezes.

    The ``keras.applications`` architectures wrap theirs in one layer named ``base``; Levi &
    Hassner's is its convolutions (``conv*``), before the fc6/fc7 head.

    Returns:
        The layers, or ``[]`` when the model has neither.
    """
    try:
        return [model.get_layer("base")]
    except ValueError:
        return [layer for layer in model.layers if layer.name.startswith("conv")
                and layer.weights]


__all__ = ["MODELS", "ModelSpec", "WeightsError", "base_layers", "build_model", "resolve_weights",
           "set_batch_norm_momentum", "set_layer_policies", "walk_layers"]

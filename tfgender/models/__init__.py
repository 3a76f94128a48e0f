"""The model registry: architecture name -> ``ModelSpec`` (builder and input facts), and
``build_model``. A fourth architecture is its module ``tfgender/models/<name>.py`` and its
line in ``choices.ARCHITECTURES`` (and a normaliser in ``input/augment.py`` if none of the
existing ones fits).

Every builder takes ``(image_size, *, weights_path, freeze_base, **options)``: the options of
``MODEL_OPTIONS``, every one of them on every call (``build_model`` fills in
``config.TrainConfig``'s defaults, the one place they are written), and ignores those its
architecture has not; it returns an uncompiled ``keras.Model`` ending in ``(batch, 1)``
float32 logits, also under a mixed precision policy. ``model_kwargs`` reads a run's options
from its config, live or recorded, for every caller: training, predict's rebuild from a
checkpoint, the epoch study and ``--precision=auto``'s timing.

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
import importlib
from collections.abc import Callable

import keras
import tensorflow as tf

from tfgender.choices import ARCHITECTURES
from tfgender.config import MODEL_OPTIONS, TrainConfig
from tfgender.input import augment
from tfgender.models.head import (
    WeightsError,
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


def _spec(name: str) -> ModelSpec:
    """An architecture's spec: its module ``tfgender/models/<name>.py`` (``build_<name>``,
    ``MIN_IMAGE_SIZE``, ``NORMALIZATION``, and ``imagenet_weights_files`` if it has ImageNet
    weights) and its line of ``choices.ARCHITECTURES`` (the default input side)."""
    module = importlib.import_module(f"tfgender.models.{name}")
    return ModelSpec(getattr(module, f"build_{name}"), ARCHITECTURES[name]["size"],
                     module.MIN_IMAGE_SIZE, module.NORMALIZATION,
                     getattr(module, "imagenet_weights_files", None))


# A new architecture is its module and its line in choices.ARCHITECTURES.
MODELS: dict[str, ModelSpec] = {name: _spec(name) for name in ARCHITECTURES}


# Those that change what a training step computes: --precision=auto times a run's own values
# of these and keys its choice by them (``changed_options``).
COMPUTE_OPTIONS = ("width_multiplier", "conv_norm", "head_units", "dropout")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def model_kwargs(run) -> dict:
    """``build_model``'s options for a run.

    Args:
        run: a ``TrainConfig``, or a recorded run's config (the ``config`` of its
            ``summary.json`` or ``run_config.json``: a field it lacks reads the default).

    Returns:
        ``{option: value}`` for every ``MODEL_OPTIONS`` entry; lists as tuples.
    """
    get = run.get if isinstance(run, dict) else (lambda name, default: getattr(run, name,
                                                                                default))
    return {option: tuple(value) if isinstance(value, list) else value
            for field, option in MODEL_OPTIONS.items()
            if (value := get(field, _DEFAULTS[field])) is not None}


def changed_options(run) -> dict:
    """The run's ``COMPUTE_OPTIONS`` that differ from the defaults, as the builders name them
    (lists, for JSON): what ``--precision=auto`` times and keys its choice by."""
    options = model_kwargs(run)
    return {MODEL_OPTIONS[field]: list(value) if isinstance(value, tuple) else value
            for field in COMPUTE_OPTIONS
            if (value := options.get(MODEL_OPTIONS[field], _DEFAULTS[field]))
            != _DEFAULTS[field]}


def config_fields(options: dict) -> dict:
    """``changed_options``' inverse: builder options -> the ``TrainConfig`` fields they are."""
    fields = {option: field for field, option in MODEL_OPTIONS.items()}
    return {fields[name]: tuple(value) if isinstance(value, list) else value
            for name, value in options.items()}


def check_image_size(name: str, image_size: int) -> None:
    """The one check of an input side against the architecture's minimum (``build_model``
    runs it; ``bin/train`` runs it before it reads any data).

    Raises:
        ValueError: ``image_size`` is no int, or below ``MODELS[name].min_image_size``.
    """
    minimum = MODELS[name].min_image_size
    if isinstance(image_size, bool) or not isinstance(image_size, int):
        raise ValueError(f"image_size must be an int, got {image_size!r}")
    if image_size < minimum:
        raise ValueError(f"image_size={image_size} is too small for {name}: the minimum is "
                         f"{minimum} (a smaller input collapses the feature map to nothing)")


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
        **kwargs: ``weights``, ``freeze_base`` and the builder options (``MODEL_OPTIONS``'
            names; ``model_kwargs`` gives a run's); an option not given has
            ``TrainConfig``'s default.

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
    check_image_size(name, image_size)
    # The one place a build turns "imagenet" or a path into a file (the registry's names).
    options = {**model_kwargs({}), **kwargs}
    path = resolve_weights(name, options.pop("weights", None), image_size, options["alpha"])
    return set_layer_policies(spec.build(image_size, weights_path=path, **options),
                              precision_name)


# The first layer of a saved model that takes [0, 255] pixels (``with_normalization``).
NORMALIZE_LAYER = "normalize"


@keras.saving.register_keras_serializable(package="tfgender")
class Normalize(keras.layers.Layer):
    """An architecture's input normalisation (``augment.normalize``: the same ops, so the same
    bits) as a layer, in float32 whatever the policy, as ``bin/predict`` normalises; registered
    with Keras, so a file holding it loads once ``tfgender.models`` is imported."""

    def __init__(self, mode: str, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, inputs):
        return augment.normalize(tf.cast(inputs, tf.float32), self.mode)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


def with_normalization(model: keras.Model, normalization: str) -> keras.Model:
    """``model`` behind its input normalisation: one model from [0, 255] RGB pixels, what
    ``best_model.keras`` holds, so that the file needs no ``--model_name`` (``bin/predict``
    reads the architecture from its name and the size from its input). The weights of
    ``model`` are shared, not copied.

    Args:
        model: a built model that takes normalised inputs.
        normalization: a key of ``augment.NORMALIZERS`` (``MODELS[name].normalization``).
    """
    side = model.input_shape[1]
    inputs = keras.Input((side, side, 3), dtype="float32", name="image")
    x = Normalize(normalization, name=NORMALIZE_LAYER)(inputs)
    return keras.Model(inputs, model(x), name=model.name)


def takes_pixels(model: keras.Model) -> bool:
    """True for a model ``with_normalization`` made (its own normalisation inside)."""
    return any(layer.name == NORMALIZE_LAYER for layer in model.layers[:2])


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


__all__ = ["COMPUTE_OPTIONS", "MODELS", "MODEL_OPTIONS", "NORMALIZE_LAYER", "ModelSpec",
           "Normalize", "WeightsError", "base_layers", "build_model", "changed_options",
           "check_image_size", "config_fields", "model_kwargs", "resolve_weights",
           "set_batch_norm_momentum", "set_layer_policies", "takes_pixels", "walk_layers",
           "with_normalization"]

"""Pieces the model builders share: the dense head, input-size checks, base-weight loading."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import keras

from tfgender.models.batch_norm import fuse_batch_norm

LOGITS_LAYER = "logits"
BASE_LAYER = "base"


def kernel_regularizer(weight_decay: float) -> keras.regularizers.Regularizer | None:
    """Returns ``L2(weight_decay)``, or None when ``weight_decay`` is 0.

    Keras' ``L2(wd)`` adds ``wd * sum(w**2)`` to the loss, so its gradient is ``2 * wd * w``;
    a Caffe ``weight_decay`` of ``lam`` (gradient ``lam * w``) corresponds to ``wd = lam / 2``.

    Args:
        weight_decay: L2 coefficient; must be >= 0.

    Returns:
        A regularizer, or None so that no zero-valued loss terms are added.

    Raises:
        ValueError: ``weight_decay`` is negative.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    return keras.regularizers.L2(weight_decay) if weight_decay > 0 else None


def add_dense_head(
    features: keras.KerasTensor,
    *,
    units: Sequence[int],
    dropout: Sequence[float],
    weight_decay: float,
    activation: str,
    kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
    bias_initializer: str | keras.initializers.Initializer = "zeros",
    prefix: str = "head",
) -> keras.KerasTensor:
    """Applies ``Dense(units[i], activation) -> Dropout(dropout[i])`` per width, then one logit.

    Args:
        features: A rank-2 symbolic tensor ``(batch, features)``.
        units: Widths of the hidden Dense layers, in order; may be empty (logistic regression).
        dropout: Dropout rate after each hidden layer. May be shorter than ``units``: the missing
            rates are 0, and a rate of 0 adds no Dropout layer.
        weight_decay: L2 coefficient on every kernel of the head, logit included (0 = none).
        activation: Activation of the hidden layers (any Keras activation name).
        kernel_initializer: Initializer for every kernel of the head.
        bias_initializer: Initializer for every bias of the head.
        prefix: Layer-name prefix of the hidden layers (``{prefix}_dense_{i}``, ...).

    Returns:
        ``(batch, 1)`` float32 logits. The last Dense layer has ``dtype="float32"`` so the logits
        (and the loss computed from them) stay float32 under a mixed precision policy.

    Raises:
        ValueError: ``dropout`` is longer than ``units`` or a rate is outside [0, 1).
    """
    if len(dropout) > len(units):
        raise ValueError(f"got {len(dropout)} dropout rates for {len(units)} hidden layers")
    if any(not 0.0 <= rate < 1.0 for rate in dropout):
        raise ValueError(f"dropout rates must be in [0, 1), got {tuple(dropout)}")
    rates = tuple(dropout) + (0.0,) * (len(units) - len(dropout))
    x = features
    for i, (width, rate) in enumerate(zip(units, rates, strict=True)):
        x = keras.layers.Dense(
            width,
            activation=activation,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer(weight_decay),
            name=f"{prefix}_dense_{i}",
        )(x)
        if rate > 0:
            x = keras.layers.Dropout(rate, name=f"{prefix}_dropout_{i}")(x)
    return keras.layers.Dense(
        1,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
        kernel_regularizer=kernel_regularizer(weight_decay),
        dtype="float32",
        name=LOGITS_LAYER,
    )(x)


def keras_models_dir() -> str:
    """Returns the directory keras.applications caches weights in: ``$KERAS_HOME/models``.

    Read at call time (Keras reads ``KERAS_HOME`` once, at import), defaulting to
    ``~/.keras/models`` like Keras.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(os.path.expanduser(home), "models")


class WeightsError(ValueError):
    """A ``weights`` argument names no usable file; the one-line message names the file (and,
    for ImageNet weights, the folder to put it in)."""


# The first bytes of every HDF5 file (Keras' .h5 and .weights.h5 are HDF5).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def resolve_base_weights(weights: str | None, imagenet_file: str | Sequence[str],
                         name: str) -> str | None:
    """Turns a builder's ``weights`` argument into a local file path, never downloading.

    Args:
        weights: None (random initialisation), ``"imagenet"`` (the file keras.applications
            would have downloaded, looked up in the local Keras cache only), or a path to a
            ``.h5`` / ``.weights.h5`` file for the base.
        imagenet_file: The exact file name keras.applications uses for these weights (or
            several, the first found in the cache is taken); empty when the architecture has
            none.
        name: Model name, for messages.

    Returns:
        None for random initialisation, else the path of an existing HDF5 file.

    Raises:
        WeightsError: The architecture has no ImageNet weights, or the file is missing, not a
            file or not HDF5; the message names it and, for ImageNet weights, the directory
            to place it in.
    """
    if weights is None:
        return None
    if weights == "imagenet":
        files = [imagenet_file] if isinstance(imagenet_file, str) else list(imagenet_file)
        if not any(files):
            raise WeightsError(f"{name} has no ImageNet weights (mobilenet_v2 and resnet50 "
                               "have); train it from scratch or give a weights file")
        directory = keras_models_dir()
        found = [os.path.join(directory, f) for f in files
                 if os.path.isfile(os.path.join(directory, f))]
        if not found:
            raise WeightsError(
                f"{name}'s ImageNet weights are read from the Keras cache only (nothing is "
                f"downloaded): put {' or '.join(reversed(files))} in {directory} (or set "
                "KERAS_HOME)")
        path = found[0]
    else:
        path = weights
        if not os.path.isfile(path):
            raise WeightsError(f"{name} weights file not found: {path}")
    try:
        with open(path, "rb") as f:
            signature = f.read(len(HDF5_SIGNATURE))
    except OSError as err:
        raise WeightsError(f"{name} weights file {path} cannot be read: "
                           f"{err.strerror or err}") from None
    if signature != HDF5_SIGNATURE:
        raise WeightsError(f"{name} weights file {path} is not an HDF5 weights file (.h5 or "
                           ".weights.h5 as Keras saves them)")
    return path


def load_weights(model: keras.Model, path: str, name: str) -> None:
    """``model.load_weights(path)``, with a file of another architecture or size (or a damaged
    one) as one ``WeightsError`` line naming it."""
    # Keras 3 loads a .weights.h5 whose layers do not all match by warning that it skipped
    # them ("Affected layers will retain their freshly-initialized weights"): a silently
    # half-initialised model. Any such warning is a refusal here.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except (OSError, ValueError, KeyError, TypeError) as err:
            reason = " ".join(str(err).split())[:200]
            raise WeightsError(f"{name} weights file {path} does not fit this model: "
                               f"{reason}") from None
    skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    if skipped:
        raise WeightsError(f"{name} weights file {path} does not fit this model: "
                           f"{' '.join(skipped[0].split())[:200]}")
    for w in caught:  # the others as they were
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


# The options of the dense head, as the builders take them (``attach_head``'s keywords).
HEAD_OPTIONS = ("head_units", "dropout", "weight_decay", "activation")


def head_options(options: dict) -> dict:
    """The head's options among a builder's ``options`` (the others are other builders')."""
    return {name: options[name] for name in HEAD_OPTIONS if name in options}


def attach_head(
    base: keras.Model,
    image_size: int,
    *,
    name: str,
    weights_path: str | None = None,
    freeze_base: bool = False,
    head_units: Sequence[int],
    dropout: Sequence[float],
    weight_decay: float,
    activation: str,
) -> keras.Model:
    """Wraps a pooled feature extractor and the dense head into one model.

    The base stays one nested layer (it must be named ``BASE_LAYER``) so the training loop
    can freeze and unfreeze it with ``model.get_layer("base").trainable = ...``. Keras 3 runs
    BatchNormalization of a non-trainable base in inference mode, as fine-tuning needs. Its
    BatchNormalization layers are replaced by ``FusedBatchNormalization`` (same weights and
    semantics, TensorFlow's fused kernel).

    Args:
        base: A model from ``(size, size, 3)`` images to ``(batch, features)``.
        image_size: Input side in pixels.
        name: Name of the returned model.
        weights_path: Weights file loaded into ``base`` first (see ``resolve_base_weights``);
            None keeps the random initialisation.
        freeze_base: Sets ``base.trainable = False`` when True.
        head_units: See ``add_dense_head``.
        dropout: See ``add_dense_head``.
        weight_decay: See ``add_dense_head``; applied to the head only.
        activation: See ``add_dense_head``.

    Returns:
        An uncompiled model ending in ``(batch, 1)`` float32 logits.

    Raises:
        ValueError: ``base`` is not named ``BASE_LAYER``.
    """
    if base.name != BASE_LAYER:
        raise ValueError(f"the base model must be named {BASE_LAYER!r}, got {base.name!r}")
    base = fuse_batch_norm(base)  # same layers and names: weight files load as before
    if weights_path is not None:
        load_weights(base, weights_path, name)
    base.trainable = not freeze_base
    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name="image")
    logits = add_dense_head(
        base(inputs),
        units=head_units,
        dropout=dropout,
        weight_decay=weight_decay,
        activation=activation,
    )
    return keras.Model(inputs, logits, name=name)


def walk_layers(parent):
    """Every layer of a model, nested models' layers (a keras.applications base) included."""
    for layer in getattr(parent, "layers", ()):
        yield layer
        yield from walk_layers(layer)


def set_layer_policies(model: keras.Model, precision_name: str) -> keras.Model:
    """Gives a built model the per-layer policies of precision ``precision_name``, in place.

    Only ``mixed_bfloat16_matmul`` has any: ``mixed_bfloat16`` in every ``Conv2D`` that is not
    depthwise and every ``Dense`` with more than one unit, where oneDNN's bf16 matmul kernels
    pay; depthwise convolutions, batch norms and the logits stay float32 (Keras casts at each
    boundary). The policies are part of each layer's config, so a saved ``.keras`` model keeps
    them. Variables stay float32 under both policies, so checkpoints do not change.
    """
    if precision_name != "mixed_bfloat16_matmul":
        return model
    for layer in walk_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            continue
        if isinstance(layer, keras.layers.Conv2D) or (
                isinstance(layer, keras.layers.Dense) and layer.units > 1):
            layer.dtype_policy = "mixed_bfloat16"
    return model


def set_batch_norm_momentum(model: keras.Model, momentum: float) -> int:
    """Sets the moving-average momentum of every BatchNormalization layer, nested ones included.

    keras.applications' MobileNetV2 uses 0.999: its moving statistics need thousands of steps
    to forget their initial (0, 1), far more than a from-scratch run on a few thousand images
    has, so until then inference-mode outputs collapse (validation AUC exactly 0.5; docs/log.md
    has the run). Momentum only changes training.

    Returns:
        The number of layers changed.
    """
    if not 0.0 < momentum < 1.0:
        raise ValueError(f"batch norm momentum must be in (0, 1), got {momentum}")
    changed = 0
    for layer in walk_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            changed += 1
    return changed

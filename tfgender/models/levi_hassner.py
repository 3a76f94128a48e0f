"""The Levi & Hassner (2015) three-convolution network for age and gender classification.

Layers, as in the paper and its Caffe deploy files, with ``size`` the input side:

    conv1 96 x 7x7 stride 4 (no padding) -> ReLU -> max-pool 3x3 stride 2 -> LRN
    conv2 256 x 5x5 pad 2               -> ReLU -> max-pool 3x3 stride 2 -> LRN
    conv3 384 x 3x3 pad 1               -> ReLU -> max-pool 3x3 stride 2
    flatten -> FC 512 -> ReLU -> dropout -> FC 512 -> ReLU -> dropout -> 1 logit

Pooling follows Caffe's ceil rounding (``ceil((h - 3) / 2) + 1`` outputs), so a 227 input
gives 56 -> 28 -> 14 -> 7 and a 7x7x384 = 18,816-wide flattened feature map, as in the
original model; Keras' "valid" pooling would give 6x6 instead.

Parameter count with one logit at 227x227: 11,411,457 (conv 1,513,984; fc6 9,634,304;
fc7 262,656; logit 513); at 224x224 the map is 6x6 and the count is 8,855,553. The
115M-parameter variant attributed to the original study cannot come from this layer list at
227: with 512-wide FC layers ~115M needs a 24x24x384 flattened map (an input of about 771
pixels), or at 227 it needs FC layers ~4,800 wide (4,096 gives 95.4M). A much larger
flattened map or FC width is therefore the likely cause; we have not found the 115M
configuration itself.

Initialisation follows the paper: every kernel is drawn from a zero-mean Gaussian with
standard deviation 0.01. Biases start at zero (the paper does not say; our choice).
``kernel_init="he"`` draws the kernels from Keras' ``he_normal`` instead (a lever for training
from scratch in a short budget).

``alpha`` (``--width_multiplier``) scales the three convolutions' filters (96, 256, 384), rounded
to a multiple of 8, as Keras' ``alpha`` does for MobileNet; the FC layers keep the paper's 512.
1.0 is the paper's network.

``conv_norm="batch"`` is the other such lever: each convolution is followed by batch
normalisation (TensorFlow's fused kernel) before its ReLU, in place of the paper's two LRN
layers; the convolutions then have no bias, since the normalisation's offset takes its place.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfgender.choices import CONV_NORMS, KERNEL_INITS, LEVI_HASSNER_FC_UNITS
from tfgender.models.batch_norm import FusedBatchNormalization
from tfgender.models.head import (
    add_dense_head,
    kernel_regularizer,
    load_weights,
)

# A per-channel mean subtracted (the paper subtracted a mean image).
NORMALIZATION = "levi_hassner_mean"
FC_UNITS = LEVI_HASSNER_FC_UNITS  # fc6 and fc7 (choices: the flags' checks count them)
INIT_STDDEV = 0.01  # Levi & Hassner 2015, Sec. 3.1.
# (filters, kernel, stride, padding) of conv1..conv3.
_CONVS = ((96, 7, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))
_POOL_SIZE, _POOL_STRIDE = 3, 2


def _conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _caffe_pool_output_size(size: int) -> int:
    # Caffe rounds pooling output up: ceil((size - k) / s) + 1 (integer form of ceil).
    if size < 1:
        return 0
    return -(-(size - _POOL_SIZE) // _POOL_STRIDE) + 1


def feature_map_size(image_size: int) -> int:
    """Returns the side of the final (pool3) feature map for a square input, 0 if it collapses.

    Args:
        image_size: Input height = width in pixels.

    Returns:
        The spatial side of the map that is flattened into fc6 (7 at 227, 6 at 224).
    """
    size = image_size
    for _, kernel, stride, pad in _CONVS:
        size = _caffe_pool_output_size(_conv_output_size(size, kernel, stride, pad))
    return max(size, 0)


def conv_filters(alpha: float = 1.0) -> tuple[int, ...]:
    """The filters of conv1..conv3 at width multiplier ``alpha``: (96, 256, 384) at 1.0.

    Each is ``filters * alpha`` rounded to the nearest multiple of 8 (at least 8).

    Raises:
        ValueError: ``alpha`` is not positive.
    """
    if not alpha > 0:
        raise ValueError(f"levi_hassner width multiplier must be positive, got {alpha}")
    return tuple(max(8, int(filters * alpha / 8 + 0.5) * 8) for filters, *_ in _CONVS)


def _smallest_input() -> int:
    size = 1
    while feature_map_size(size) < 1:
        size += 1
    return size


# 35: conv1 gives 8, the pools 4 -> 2 -> 1. Derived from the same arithmetic as the model.
MIN_IMAGE_SIZE = _smallest_input()


@keras.saving.register_keras_serializable(package="tfgender")
class LocalResponseNormalization(keras.layers.Layer):
    """Caffe's across-channel LRN: ``x / (k + alpha / size * sum_window(x**2)) ** beta``.

    Caffe divides ``alpha`` by the window ``size``; ``tf.nn.local_response_normalization``
    does not, and takes a half-width, so Caffe's (size 5, alpha 1e-4, beta 0.75) is TF's
    (depth_radius 2, alpha 1e-4 / 5, beta 0.75, bias 1). The arguments are kept in Caffe's
    form so they read like the paper.

    The normalisation runs in float32 and is cast back: under mixed precision the squared
    sum raised to a fractional power loses too much in bfloat16/float16, and the TF kernel
    does not accept bfloat16 on every device. The op has an XLA lowering, so the layer also
    works inside ``tf.function(jit_compile=True)``.
    """

    def __init__(
        self,
        size: int = 5,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 1.0,
        **kwargs,
    ):
        """Initialises the layer.

        Args:
            size: Number of channels in the window (odd), Caffe's ``local_size``.
            alpha: Caffe's scale, divided by ``size`` before use.
            beta: Exponent.
            k: Additive constant (TF's ``bias``).
            **kwargs: Standard ``keras.layers.Layer`` arguments (name, dtype, ...).

        Raises:
            ValueError: ``size`` is not a positive odd number.
        """
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"LRN size must be a positive odd number, got {size}")
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def call(self, inputs):
        outputs = tf.nn.local_response_normalization(
            tf.cast(inputs, tf.float32),
            depth_radius=(self.size - 1) // 2,
            bias=self.k,
            alpha=self.alpha / self.size,
            beta=self.beta,
        )
        return tf.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k})
        return config


def _caffe_max_pool(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """3x3/2 max pooling with Caffe's ceil rounding.

    Pads the bottom/right edge just enough for the extra window Caffe takes. The padding is
    zeros, which equals Caffe's "ignore out-of-bounds" rule only because every pooled tensor
    here follows a ReLU (all values >= 0).
    """
    size = x.shape[1]
    out = _caffe_pool_output_size(size)
    extra = (out - 1) * _POOL_STRIDE + _POOL_SIZE - size
    if extra > 0:
        x = keras.layers.ZeroPadding2D(((0, extra), (0, extra)), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(_POOL_SIZE, _POOL_STRIDE, padding="valid", name=name)(x)


def build_levi_hassner(
    image_size: int,
    *,
    dropout: Sequence[float],
    weight_decay: float,
    kernel_init: str,
    conv_norm: str,
    alpha: float,
    weights_path: str | None = None,
    freeze_base: bool = False,
    **unused,
) -> keras.Model:
    """Builds the Levi & Hassner network ending in one float32 logit.

    The FC layers are fixed, 512-512 ReLU as published: the other builders' ``head_units``
    and ``activation`` are ignored like every option this network does not have.

    Args:
        image_size: Input side in pixels; 227 in the paper, at least ``MIN_IMAGE_SIZE`` (35).
        dropout: Dropout after fc6 and fc7: the first two rates are used (missing ones = 0).
        weight_decay: L2 coefficient (Keras convention, see ``head.kernel_regularizer``) on
            every conv and dense kernel.
        weights_path: None for the paper's random initialisation, or the local
            ``.weights.h5`` / ``.h5`` file saved from this model that
            ``models.resolve_weights`` found (``build_model`` resolves it once).
        freeze_base: Must be False: this network has no pretrained base to freeze.
        kernel_init: ``"paper"`` (Gaussian, standard deviation 0.01, as the paper) or ``"he"``
            (Keras' ``he_normal``, scaled to each layer's fan-in).
        conv_norm: ``"lrn"`` (the paper's LRN after pool1 and pool2) or ``"batch"`` (batch
            normalisation between every convolution and its ReLU, and no LRN).
        alpha: Width multiplier of the convolutions (``conv_filters``); 1.0 is the paper's.
        **unused: Other builders' options (``head_units``, ``activation``), ignored.

    Returns:
        An uncompiled ``keras.Model`` from ``(batch, size, size, 3)`` float images to
        ``(batch, 1)`` float32 logits.

    Raises:
        ValueError: ``alpha`` is not positive, or ``freeze_base`` (``models.build_model``
            checks ``image_size`` against ``MIN_IMAGE_SIZE`` before it calls this).
        WeightsError: the weights file is not of this model.
    """
    del unused
    path = weights_path
    if freeze_base:
        raise ValueError("levi_hassner has no pretrained base; freeze_base must be False")

    if kernel_init not in KERNEL_INITS:
        raise ValueError(f"unknown kernel_init {kernel_init!r}; known: {', '.join(KERNEL_INITS)}")
    if conv_norm not in CONV_NORMS:
        raise ValueError(f"unknown conv_norm {conv_norm!r}; known: {', '.join(CONV_NORMS)}")
    filters_of = conv_filters(alpha)
    batch_norm = conv_norm == "batch"
    init = (keras.initializers.RandomNormal(stddev=INIT_STDDEV) if kernel_init == "paper"
            else keras.initializers.HeNormal())
    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name="image")
    x = inputs
    for i, ((_, kernel, stride, pad), filters) in enumerate(
            zip(_CONVS, filters_of, strict=True), start=1):
        if pad:
            x = keras.layers.ZeroPadding2D(pad, name=f"conv{i}_pad")(x)
        x = keras.layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding="valid",
            activation=None if batch_norm else "relu",
            use_bias=not batch_norm,
            kernel_initializer=init,
            kernel_regularizer=kernel_regularizer(weight_decay),
            name=f"conv{i}",
        )(x)
        if batch_norm:
            x = FusedBatchNormalization(name=f"conv{i}_bn")(x)
            x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
        x = _caffe_max_pool(x, name=f"pool{i}")
        if not batch_norm and i < len(_CONVS):  # The paper normalises after pool1 and pool2.
            x = LocalResponseNormalization(5, 1e-4, 0.75, name=f"norm{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logits = add_dense_head(
        x,
        units=FC_UNITS,
        dropout=tuple(dropout)[: len(FC_UNITS)],
        weight_decay=weight_decay,
        activation="relu",
        kernel_initializer=init,
        prefix="fc",
    )
    model = keras.Model(inputs, logits, name="levi_hassner")
    if path is not None:
        load_weights(model, path, "levi_hassner")
    return model

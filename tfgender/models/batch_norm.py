"""BatchNormalization on TensorFlow's fused kernel, for the keras.applications bases.

Keras 3's ``BatchNormalization`` computes batch statistics and the normalisation from
separate ops (mean, squared difference, subtract, multiply, ...), and its gradient from as
many again. TensorFlow's ``FusedBatchNormV3`` does each direction in one op (oneDNN on this
CPU, cuDNN on GPUs, and it compiles under XLA). In a profile of the MobileNetV2 training step
here the unfused ops took about half of all op time; with the fused kernel the step ran
faster side by side (``benchmarks/levers.py batch_norm``; the figure is in docs/benchmarks.md).
"""

from __future__ import annotations

import keras
import tensorflow as tf

# FusedBatchNormV3 normalises NHWC or NCHW 4-D tensors; these input dtypes keep float32
# statistics and parameters inside the op, as Keras does by upcasting.
_FUSED_DTYPES = (tf.float32, tf.float16, tf.bfloat16)


@keras.saving.register_keras_serializable(package="tfgender")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` computed with ``tf.compat.v1.nn.fused_batch_norm``.

    Same weights, configuration and semantics: training mode normalises with the batch
    statistics and moves the moving statistics by ``momentum`` towards the batch mean and
    the biased batch variance (as Keras does); inference mode, and a non-trainable layer,
    use the moving statistics. Inputs that are not 4-D channels-last, or a mask, renorm or
    synchronised statistics, fall back to the Keras computation.
    """

    def _fusable(self, inputs, mask) -> bool:
        rank = len(inputs.shape)
        axis = self.axis if self.axis >= 0 else self.axis + rank
        return (rank == 4 and axis == 3 and mask is None and not self.renorm
                and not self.synchronized and inputs.dtype in _FUSED_DTYPES)

    def call(self, inputs, training=None, mask=None):
        inputs = tf.convert_to_tensor(inputs)
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        gamma = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones([channels])
        beta = tf.convert_to_tensor(self.beta) if self.center else tf.zeros([channels])
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC",
                is_training=True)
            # The op returns the unbiased (n - 1) variance for the running average; Keras
            # moves its moving variance towards the biased one it normalised with.
            count = tf.cast(tf.size(inputs) // channels, tf.float32)
            variance = variance * ((count - 1.0) / tf.maximum(count, 1.0))
            self.moving_mean.assign(self.moving_mean * self.momentum
                                    + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum
                                        + variance * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance), epsilon=self.epsilon,
                data_format="NHWC", is_training=False)
        return tf.cast(outputs, self.compute_dtype)


def fuse_batch_norm(model: keras.Model) -> keras.Model:
    """Returns a copy of a functional model whose BatchNormalization layers are fused.

    Every other layer is cloned from its config, as ``keras.models.clone_model`` does; the
    copy has fresh weights (load them afterwards) and the same layer and model names, so
    weight files and checkpoints of the original load into it.
    """
    def clone(layer):
        if type(layer) is keras.layers.BatchNormalization:
            return FusedBatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    if not any(type(layer) is keras.layers.BatchNormalization for layer in model.layers):
        return model
    return keras.models.clone_model(model, clone_function=clone)

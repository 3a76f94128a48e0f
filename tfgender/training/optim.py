"""Optimizers and learning-rate schedules (the study's future work), Keras 3 APIs only."""

from __future__ import annotations

import contextlib
import math

import keras
import tensorflow as tf

from tfgender.choices import OPTIMIZERS, SCHEDULES


@keras.saving.register_keras_serializable(package="tfgender")
class StudySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then constant / cosine / step / exponential decay, then fine-tuning.

    The rate is a pure function of the step, so a resumed run continues the same curve.
    ``total_steps`` may be a variable (``--train_minutes`` sets it once the run has timed its
    epochs, and a checkpoint keeps it), so the cosine ends where the run does.
    From ``fine_tune_step`` on (the step the base model is unfrozen in two-phase
    fine-tuning) the rate is ``fine_tune_learning_rate`` when that is positive.
    """

    def __init__(self, learning_rate: float, kind: str = "constant", *, total_steps: int = 1,
                 warmup_steps: int = 0, decay_steps: int = 1, decay_rate: float = 0.1,
                 fine_tune_step: int = -1, fine_tune_learning_rate: float = 0.0):
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; expected one of {SCHEDULES}")
        self.learning_rate = float(learning_rate)
        self.kind = kind
        self.total_steps = (total_steps if isinstance(total_steps, tf.Variable)
                            else max(1, int(total_steps)))
        self.warmup_steps = max(0, int(warmup_steps))
        self.decay_steps = max(1, int(decay_steps))
        self.decay_rate = float(decay_rate)
        self.fine_tune_step = int(fine_tune_step)
        self.fine_tune_learning_rate = float(fine_tune_learning_rate)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        base = tf.constant(self.learning_rate, tf.float32)
        after = tf.maximum(step - self.warmup_steps, 0.0)
        if self.kind == "cosine":
            span = tf.maximum(1.0, tf.cast(self.total_steps, tf.float32) - self.warmup_steps)
            rate = base * 0.5 * (1.0 + tf.cos(math.pi * tf.minimum(after / span, 1.0)))
        elif self.kind == "step":
            rate = base * self.decay_rate ** tf.floor(after / self.decay_steps)
        elif self.kind == "exponential":
            rate = base * self.decay_rate ** (after / self.decay_steps)
        else:
            rate = base
        if self.warmup_steps:
            rate = tf.where(step < self.warmup_steps, base * (step + 1.0) / self.warmup_steps, rate)
        if self.fine_tune_step >= 0 and self.fine_tune_learning_rate > 0:
            rate = tf.where(step >= self.fine_tune_step, self.fine_tune_learning_rate, rate)
        return rate

    def get_config(self):
        return {"learning_rate": self.learning_rate, "kind": self.kind,
                "total_steps": int(self.total_steps), "warmup_steps": self.warmup_steps,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "fine_tune_step": self.fine_tune_step,
                "fine_tune_learning_rate": self.fine_tune_learning_rate}


def create_optimizer(name: str, schedule, *, momentum: float = 0.9,
                     decoupled_weight_decay: float = 0.0, ema_momentum: float = 0.0,
                     loss_scale: bool = False) -> keras.optimizers.Optimizer:
    """Builds an optimizer; under float16 it is wrapped in Keras 3's ``LossScaleOptimizer``.

    Args:
        name: ``adam``, ``adamw`` or ``sgd`` (with momentum).
        schedule: a learning rate or a ``LearningRateSchedule``.
        momentum: SGD momentum.
        decoupled_weight_decay: AdamW's (and SGD's) decoupled weight decay; the study's L2
            penalty is the model's ``weight_decay`` instead.
        ema_momentum: keep a moving average of the weights with this momentum (Keras'
            ``use_ema``; ``averaged_weights`` puts it in the model); 0: none.
        loss_scale: wrap in a dynamic ``LossScaleOptimizer`` (mixed_float16).
    """
    ema = dict(use_ema=True, ema_momentum=ema_momentum) if ema_momentum else {}
    if name == "adam":
        optimizer = keras.optimizers.Adam(schedule, **ema)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=decoupled_weight_decay, **ema)
    elif name == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=momentum,
                                         weight_decay=decoupled_weight_decay or None, **ema)
    else:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


@contextlib.contextmanager
def averaged_weights(optimizer: keras.optimizers.Optimizer, variables):
    """Within the block ``variables`` hold the optimizer's moving averages (``use_ema``); on
    leaving it they get their own values back. Without a moving average it does nothing.

    Args:
        optimizer: the run's optimizer (a ``LossScaleOptimizer``'s inner one is used).
        variables: the list the optimizer was built over, in that order.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if not inner.use_ema:
        yield
        return
    saved = [tf.identity(v) for v in variables]
    inner.finalize_variable_values(variables)  # Keras' own copy of the averages
    try:
        yield
    finally:
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)

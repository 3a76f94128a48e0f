"""Step-function factories: tf.function-safe train and eval steps under any tf.distribute strategy.

Python-side work (logging, checkpoints, numpy) stays outside these functions.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgender.evaluation import forward
from tfgender.input import augment


def _metrics(prefix: str) -> dict:
    # Created outside the strategy scope and updated in cross-replica context from gathered
    # values, so every replica and worker sees the same numbers.
    return {
        "loss": keras.metrics.Mean(name=f"{prefix}_loss"),
        "accuracy": keras.metrics.BinaryAccuracy(name=f"{prefix}_accuracy", threshold=0.0),
        # Keras' AUC is an estimate over 200 thresholds, of augmented training batches: its
        # own name, beside eval/auc, which is exact (metrics.exact_auc) on the eval split.
        "auc_estimate": keras.metrics.AUC(name=f"{prefix}_auc_estimate", from_logits=True),
    }


def _per_example_loss(labels, logits, label_smoothing: float = 0.0):
    targets = tf.cast(labels, tf.float32)[:, None]
    if label_smoothing:
        # As keras.losses.BinaryCrossentropy: targets move towards 0.5 by half the amount.
        targets = targets * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=targets,
                                                   logits=tf.cast(logits, tf.float32))[:, 0]


def mix_batch(inputs, labels, alpha: float, seed):
    """Mixup (Zhang et al. 2018): each example blended with the batch reversed.

    One mixing weight per example, ``lambda ~ Beta(alpha, alpha)`` drawn statelessly from
    ``seed``, folded to ``max(lambda, 1 - lambda)`` so every example keeps its own label as
    the larger part.

    Returns:
        (mixed inputs, soft float32 targets in [0, 1]).
    """
    batch = tf.shape(inputs)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    a = tf.random.stateless_gamma([batch], seeds[0], alpha=alpha)
    b = tf.random.stateless_gamma([batch], seeds[1], alpha=alpha)
    lam = a / (a + b)
    lam = tf.maximum(lam, 1.0 - lam)
    mixed = lam[:, None, None, None] * tf.cast(inputs, tf.float32) + \
        (1.0 - lam[:, None, None, None]) * tf.cast(tf.reverse(inputs, [0]), tf.float32)
    targets = tf.cast(labels, tf.float32)
    targets = lam * targets + (1.0 - lam) * tf.reverse(targets, [0])
    return tf.cast(mixed, inputs.dtype), targets


# The variables a training forward pass assigns (batch-norm moving statistics, the dropout
# seed generators' states): a skipped step puts them back.
_FORWARD_STATE = ("moving_mean", "moving_variance", "seed_generator_state")


def forward_state(model) -> list:
    """The variables ``model(x, training=True)`` assigns: batch-norm statistics, seed states."""
    return [v for v in model.non_trainable_variables if v.name in _FORWARD_STATE]


def apply_if(optimizer, grads, variables, finite) -> None:
    """``optimizer.apply(grads, variables)`` only where ``finite`` holds; else nothing moves.

    ``finite`` must be the same on every replica. A skipped update leaves the weights, the
    optimizer's slots and its ``iterations`` (so weight decay and the schedule) untouched.
    Strategies that synchronise with ``merge_call`` (Mirrored on CPUs) cannot take a ``cond``
    whose branch merges in replica context, so there the ``cond`` runs cross-replica, as
    ``keras.optimizers.LossScaleOptimizer`` does.
    """
    def apply():
        optimizer.apply(grads, variables)

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(finite, apply, lambda: None)
        return

    def cross_replica(distribution, grads, finite):
        finite = distribution.experimental_local_results(finite)[0]

        def apply_fn():
            distribution.extended.call_for_each_replica(
                lambda g: optimizer.apply(g, variables), args=(grads,))

        tf.cond(finite, apply_fn, lambda: None)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(grads, finite))


def make_train_step(model, optimizer, strategy, config, setup, state):
    """Builds ``train_steps(iterator, num_steps)``: ``num_steps`` updates in one call, and
    ``train_steps.single(iterator)``: one update, in a function without a loop (for the
    profiler, which can attribute such a call's ops to its step marker).

    Augmentation runs inside the step, on the device that trains, seeded statelessly by
    (seed, step, replica) so every epoch sees fresh augmentations and runs are reproducible.

    Returns:
        (train_steps, metrics) where metrics is a dict of Keras metrics (loss, accuracy, auc).
    """
    metrics = _metrics("train")
    compute_dtype = keras.mixed_precision.global_policy().compute_dtype
    global_batch = config.batch_size
    variables = model.trainable_variables
    loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    augment_fn = augment.make_augmentation(config, setup, dtype=compute_dtype,
                                           normalization=setup.normalization)
    label_smoothing, mixup_alpha = config.label_smoothing, config.mixup_alpha
    moving = forward_state(model)
    replicas = strategy.num_replicas_in_sync
    if not setup.jit_compile:
        # The gather resample is XLA-safe and several times faster compiled, even when the
        # model itself runs in oneDNN graph mode (XLA made CPU model steps slower).
        augment_fn = augment_fn.compiled()

    def replica_step(images, labels, step):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = augment.make_step_seed(config.seed, step, replica)
        inputs = augment_fn(images, seed)
        targets = labels
        if mixup_alpha:
            inputs, targets = mix_batch(inputs, labels, mixup_alpha,
                                        tf.random.experimental.stateless_fold_in(seed, 7))
        before = [tf.identity(v) for v in moving]
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            # Averaged over the GLOBAL batch: the all-reduce sums the replicas' gradients.
            loss = tf.nn.compute_average_loss(
                _per_example_loss(targets, logits, label_smoothing),
                global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss) if loss_scaled else loss
        grads = tape.gradient(scaled, variables)
        finite = tf.math.is_finite(loss)
        if not loss_scaled:  # a float16 scaled gradient may overflow: LossScaleOptimizer's job
            finite = tf.reduce_all([finite] + [tf.reduce_all(tf.math.is_finite(g))
                                               for g in grads if g is not None])
        if replicas > 1:  # every replica skips or none does (ReduceOp has no MIN)
            finite = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(finite), tf.float32)) == 0
        if loss_scaled:
            optimizer.apply(grads, variables)  # skips non-finite gradients, lowers the scale
        else:
            apply_if(optimizer, grads, variables, finite)
        # The forward pass has moved the batch-norm statistics and dropout seeds: a skipped
        # step puts them back.
        for variable, value in zip(moving, before, strict=True):
            variable.assign(tf.where(finite, variable, value))
        return loss, tf.cast(logits, tf.float32), labels, finite

    if setup.jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True)

    def one_step(iterator):
        images, labels = next(iterator)
        loss, logits, labels, finite = strategy.run(
            replica_step, args=(images, labels, state["step"].value()))
        loss = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        logits = strategy.gather(logits, axis=0)
        labels = strategy.gather(labels, axis=0)
        # The same on every replica; a finite loss with non-finite gradients is skipped too.
        finite = tf.logical_and(
            strategy.experimental_local_results(finite)[0], tf.math.is_finite(loss))
        state["non_finite"].assign(tf.where(finite, tf.constant(0, tf.int64),
                                            state["non_finite"] + 1))
        state["non_finite_total"].assign_add(tf.cast(tf.logical_not(finite), tf.int64))
        if finite:
            metrics["loss"].update_state(loss)
            metrics["accuracy"].update_state(labels[:, None], logits)
            metrics["auc_estimate"].update_state(labels[:, None], logits)
        state["step"].assign_add(1)

    @tf.function
    def train_steps(iterator, num_steps):
        for _ in tf.range(num_steps):
            one_step(iterator)

    # One step per call, with no loop: what a profiled step runs. xprof groups a step's ops
    # under its "train" marker only when no TensorFlow while loop is running; the iterations
    # of one become its step groups instead, with no marker and no time (so the Overview page
    # says "No step marker observed").
    train_steps.single = tf.function(one_step)

    return train_steps, metrics


def make_eval_step(model, strategy, setup, crop_fraction=None):
    """Builds ``eval_step(images, labels) -> (logits, labels)``, gathered over replicas.

    The metrics are computed from all of a pass's logits by ``metrics.binary_metrics``, the
    definition ``bin/evaluate`` uses (``metrics.run_eval``).

    Args:
        crop_fraction: see ``augment.eval_transform`` (None: the central crop).
    """
    compute_dtype = keras.mixed_precision.global_policy().compute_dtype

    def replica_step(images, labels):
        logits = forward.eval_logits(model, images, image_size=setup.image_size,
                                     normalization=setup.normalization,
                                     crop_fraction=crop_fraction, dtype=compute_dtype)
        return logits, labels

    @tf.function
    def eval_step(images, labels):
        logits, labels = strategy.run(replica_step, args=(images, labels))
        return strategy.gather(logits, axis=0), strategy.gather(labels, axis=0)

    return eval_step

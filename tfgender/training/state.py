"""A run's state: model, optimizer, schedule and counters, built once, and its checkpoint.

What a ``tf.train.Checkpoint`` of a run holds (the model, the optimizer, dropout's seed states
and the counters of ``build``), the rules for resuming one (``check_resume``: the same optional
parts) and for starting from another run's weights (``restore_init_checkpoint``), and the save
that turns a full disk into one line.
"""

from __future__ import annotations

import errno
import glob
import os
import shutil

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfgender import models
from tfgender.files import CHECKPOINT_DIR
from tfgender.training import TrainingError, optim


def seed_generator_states(model: keras.Model) -> list:
    """Dropout's random state variables: Keras does not checkpoint them, so we do."""
    states = []
    # The model first, then its layers depth first: the order the checkpoint's list keeps.
    for layer in (model, *models.walk_layers(model)):
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator):
                states.append(value.state)
    return states


def build(config, setup, strategy):
    """The model, optimizer, schedule and counters of a run, built in ``strategy``'s scope.

    The one builder: ``bin/train``'s loop, the epoch-time study (and so ``--precision=auto``'s
    calibration and the benchmarks) and the step tests take theirs from here. ``setup`` is
    ``loop.Setup`` (sizes, policy, steps per epoch).
    """
    total = setup.steps_per_epoch * config.epochs
    # Outside the scope on purpose: plain variables (every replica/worker updates its copy
    # identically in cross-replica context) convert with int()/float(); mirrored ones do not.
    state = {
        "step": tf.Variable(0, dtype=tf.int64, trainable=False),
        "best_metric": tf.Variable(np.nan, dtype=tf.float64, trainable=False),
        "bad_epochs": tf.Variable(0, dtype=tf.int64, trainable=False),
        # Consecutive and total steps whose loss was not finite (skipped updates).
        "non_finite": tf.Variable(0, dtype=tf.int64, trainable=False),
        "non_finite_total": tf.Variable(0, dtype=tf.int64, trainable=False),
    }
    if config.train_minutes:  # the planned length: --epochs until actions.plan_steps shortens it
        state["planned_steps"] = tf.Variable(total, dtype=tf.int64, trainable=False)
    if config.ema_momentum:  # a record that the optimizer holds averages (check_resume)
        state["ema_momentum"] = tf.Variable(config.ema_momentum, dtype=tf.float64,
                                            trainable=False)
    with strategy.scope():
        try:
            model = models.build_model(
                config.model, setup.image_size, precision_name=setup.policy,
                weights=config.weights or None, freeze_base=False,
                **models.model_kwargs(config))
        except models.WeightsError as err:  # a file of another model (resolve_setup checked
            raise TrainingError(f"--weights={config.weights}: {err}") from None  # the rest)
        if config.bn_momentum:
            models.set_batch_norm_momentum(model, config.bn_momentum)
        schedule = optim.StudySchedule(
            config.learning_rate, config.schedule,
            total_steps=state.get("planned_steps", total),
            warmup_steps=int(config.warmup_epochs * setup.steps_per_epoch),
            decay_steps=int(config.decay_epochs * setup.steps_per_epoch),
            decay_rate=config.decay_rate,
            fine_tune_step=(config.freeze_base_epochs * setup.steps_per_epoch
                            if config.freeze_base_epochs else -1),
            fine_tune_learning_rate=config.fine_tune_learning_rate)
        optimizer = optim.create_optimizer(
            config.optimizer, schedule, momentum=config.momentum,
            decoupled_weight_decay=config.decoupled_weight_decay,
            ema_momentum=config.ema_momentum, loss_scale=setup.policy == "mixed_float16")
        # Built over every variable that may ever train, so unfreezing the base later
        # finds its optimizer slots (and a checkpoint restores them).
        optimizer.build(model.trainable_variables)
    return model, optimizer, schedule, state


# The optional parts of a run's state, and the flag that creates each: a resumed run must have
# the same ones as the checkpoint it resumes.
OPTIONAL_STATE = {"planned_steps": "--train_minutes", "ema_momentum": "--ema_momentum"}


def saved_state_names(path: str, flag: str) -> set[str]:
    """The top-level names a checkpoint holds (``model``, ``step``, ``planned_steps``, ...).

    Raises:
        TrainingError: ``path`` is missing or unreadable, named with ``flag``.
    """
    try:
        return {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    except (tf.errors.OpError, RuntimeError) as err:  # missing, truncated ("too short ...")
        raise TrainingError(f"{flag}: {path} is not a readable checkpoint "
                            f"({str(err).splitlines()[0][:200]})") from None


def check_resume(latest: str, state: dict, config, workdir: str) -> None:
    """Refuses to resume ``latest`` with flags that add or drop a part of its state."""
    saved = saved_state_names(latest, f"--workdir={workdir}")
    for name, flag in OPTIONAL_STATE.items():
        if (name in saved) == (name in state):
            continue
        value = getattr(config, flag[2:])
        was = "with" if name in saved else "without"
        raise TrainingError(
            f"--workdir={workdir} holds a run trained {was} {flag}, which this one "
            f"{'drops' if name in saved else f'adds ({flag}={value:g})'}: resume it with its "
            "own flags or choose another --workdir")
    if "ema_momentum" in state:
        momentum = float(tf.train.load_variable(latest, "ema_momentum/.ATTRIBUTES/VARIABLE_VALUE"))
        if momentum != config.ema_momentum:
            raise TrainingError(f"--workdir={workdir} holds a run trained with --ema_momentum="
                                f"{momentum:g}, not {config.ema_momentum:g}: resume it with its "
                                "own flags or choose another --workdir")




def restore_init_checkpoint(model: keras.Model, path: str, strategy=None) -> None:
    if os.path.isdir(path):
        path = tf.train.latest_checkpoint(os.path.join(path, CHECKPOINT_DIR)) or \
            tf.train.latest_checkpoint(path)
    if not path:
        raise TrainingError("--init_checkpoint names no checkpoint (a run's workdir or a "
                            "checkpoint prefix)")
    # A run with --ema_momentum is used through its weight average, as its evaluation and
    # best model were: an optimizer built like every run's (a schedule, so its variables are
    # the step counter, then the averages, then its own slots) reads the averages back.
    saved = saved_state_names(path, "--init_checkpoint")
    averaged, parts = "ema_momentum" in saved, dict(model=model)
    if averaged:
        with (strategy or tf.distribute.get_strategy()).scope():
            parts["optimizer"] = optim.create_optimizer(
                "sgd", optim.StudySchedule(0.0), momentum=0.0, ema_momentum=0.5)
            parts["optimizer"].build(model.trainable_variables)
    try:  # every variable of this network must come from the checkpoint, none left random
        tf.train.Checkpoint(**parts).restore(path).expect_partial() \
            .assert_existing_objects_matched()
    except (AssertionError, ValueError) as err:  # unmatched objects; a variable's shape
        detail = str(err).splitlines()[0][:200]
        raise TrainingError(
            f"--init_checkpoint={path} holds another network than this run builds: give the "
            "--model, --conv_norm, --head_units and --width_multiplier of the run it came "
            f"from ({detail})") from None
    if averaged:
        parts["optimizer"].finalize_variable_values(model.trainable_variables)
    logging.info("Initialised model weights from %s%s", path,
                 " (the weight average)" if averaged else "")




def no_space(err: Exception) -> bool:
    return (isinstance(err, OSError) and err.errno == errno.ENOSPC) or (
        isinstance(err, tf.errors.ResourceExhaustedError)) or "No space left" in str(err)




def save(manager: tf.train.CheckpointManager, step: int) -> None:
    """Saves a checkpoint; a full disk is one error line, with no half-written one left."""
    try:
        manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as err:
        if not no_space(err):
            raise
        for partial in glob.glob(os.path.join(manager.directory, "*_temp*")):
            shutil.rmtree(partial, ignore_errors=True)
        raise TrainingError(f"no space left on the device while saving the checkpoint of step "
                            f"{step} to {manager.directory}; the earlier checkpoints are kept: "
                            "free some space and rerun the same command to resume") from None

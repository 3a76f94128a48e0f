"""train_and_evaluate: the custom tf.function training loop with checkpoints and summaries.

Data flows: converted TFRecords -> ``input_pipeline.create_dataset`` (decoded, cached uint8)
-> ``make_train_step`` (augmentation on the training device, forward, loss, update) ->
metrics -> TensorBoard ``train/`` and ``eval/`` scalars, HParams and ``summary.json``.

A run is resumable at any moment: model, optimizer, step counter, dropout seed state and the
early-stopping state live in a ``tf.train.Checkpoint``; the data position is a pure function
of the step (each epoch's order depends only on (seed, epoch)), so a resumed run skips to
exactly the batch an uninterrupted run would see next.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import glob
import json
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfgender import errors, models
from tfgender import progress as progress_lib
from tfgender.evaluation import summaries
from tfgender.files import (  # noqa: F401  (the names also as train.X)
    BEST_MODEL,
    CHECKPOINT_DIR,
    HISTORY_FILE,
    SUMMARY_FILE,
    write_json_atomic,
)
from tfgender.input import augment
from tfgender.input import pipeline as input_pipeline
from tfgender.training import distribute, interrupt, optim, precision, time_to_accuracy
from tfgender.training.steps import make_eval_step, make_train_step


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says why."""


@dataclasses.dataclass(frozen=True)
class Setup:
    """What a config resolves to on this machine, checked before any work starts."""

    image_size: int
    cache_image_size: int
    policy: str
    jit_compile: bool
    normalization: str
    train_records: int
    eval_records: int
    steps_per_epoch: int
    data_steps_per_epoch: int


def _selection(config, training: bool) -> dict:
    folds = config.train_folds if training else config.eval_folds
    if folds:
        return {"folds": list(folds)}
    return {"split": config.train_split if training else config.eval_split}


def resolve_setup(config) -> Setup:
    """Validates ``config`` and resolves its ``auto`` choices.

    Raises:
        TrainingError: unknown model, image size too small, empty split, batch too large.
    """
    if config.model not in models.MODELS:
        raise TrainingError(f"unknown model {config.model!r}; known models: "
                            f"{', '.join(sorted(models.MODELS))}")
    info = models.MODEL_INFO[config.model]
    image_size = config.image_size or info.default_image_size
    if image_size < info.min_image_size:
        raise TrainingError(f"--image_size={image_size} is too small for {config.model}: the "
                            f"minimum is {info.min_image_size}")
    fractions = ("crop_scale", "erasing_scale")
    for flag, low in (("brightness", 0), ("contrast", 0), ("saturation", 0), ("crop_scale", 1e-9),
                      ("erasing_scale", 1e-9)):
        value = tuple(getattr(config, flag))
        if value and not (len(value) == 2 and low <= value[0] <= value[1]
                          and (flag not in fractions or value[1] <= 1)):
            most = ", high <= 1" if flag in fractions else ""
            raise TrainingError(f"--{flag}={','.join(map(str, value))}: give two numbers "
                                f"low,high with {'0 <' if low else '0 <='} low <= high{most}, "
                                "or nothing to turn it off")
    if config.random_erasing and len(config.erasing_scale) != 2:
        raise TrainingError("--random_erasing needs --erasing_scale=low,high (fractions of the "
                            "image's area)")
    cache_size = config.cache_image_size or image_size
    if cache_size < image_size and not config.crop_scale:
        logging.info("cache_image_size %d < image_size %d: crops are resized up",
                     cache_size, image_size)
    try:
        train_records = input_pipeline.count_records(config.data_dir, **_selection(config, True))
        eval_records = input_pipeline.count_records(config.data_dir, **_selection(config, False))
    except (ValueError, FileNotFoundError) as err:
        raise TrainingError(str(err)) from None
    if train_records == 0 or eval_records == 0:
        which = "training" if train_records == 0 else "evaluation"
        raise TrainingError(f"the {which} selection of {config.data_dir} is empty")
    jit_compile = precision.resolve_jit(config.jit_compile)
    if config.mixup_alpha and jit_compile:
        raise TrainingError("--mixup_alpha needs the model step outside XLA (its Beta draw has "
                            "no XLA kernel): add --jit_compile=false")
    data_steps = train_records // config.batch_size
    if data_steps == 0:
        raise TrainingError(f"--batch_size={config.batch_size} exceeds the {train_records} "
                            "training records: not one full batch")
    return Setup(
        image_size=image_size, cache_image_size=cache_size,
        policy=precision.resolve_precision(config.precision, config.model,
                                           image_size=image_size, batch_size=config.batch_size,
                                           model_options=model_options(config)),
        jit_compile=jit_compile,
        normalization=info.normalization, train_records=train_records,
        eval_records=eval_records, steps_per_epoch=config.steps_per_epoch or data_steps,
        data_steps_per_epoch=data_steps)


# Config fields that change what a step computes -> models.build_model's option name.
_COMPUTE_OPTIONS = {"width_multiplier": "alpha", "conv_norm": "conv_norm",
                    "head_units": "head_units", "dropout": "dropout"}


def model_options(config) -> dict:
    """The run's model options that differ from its config's defaults (``TrainConfig``), as
    ``models.build_model`` names them: what ``--precision=auto`` times and keys its choice by."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    return {option: list(value) if isinstance(value, tuple) else value
            for field, option in _COMPUTE_OPTIONS.items()
            if (value := getattr(config, field)) != defaults[field]}


def _seed_generator_states(model: keras.Model) -> list:
    """Dropout's random state variables: Keras does not checkpoint them, so we do."""
    states = []
    # The model first, then its layers depth first: the order the checkpoint's list keeps.
    for layer in (model, *models.walk_layers(model)):
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator):
                states.append(value.state)
    return states


def _build(config, setup: Setup, strategy):
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
    if config.train_minutes:  # the planned length: --epochs until _plan_steps shortens it
        state["planned_steps"] = tf.Variable(total, dtype=tf.int64, trainable=False)
    if config.ema_momentum:  # a record that the optimizer holds averages (_check_resume)
        state["ema_momentum"] = tf.Variable(config.ema_momentum, dtype=tf.float64,
                                            trainable=False)
    with strategy.scope():
        model = models.build_model(
            config.model, setup.image_size, precision_name=setup.policy,
            head_units=config.head_units,
            dropout=config.dropout, weight_decay=config.weight_decay,
            activation=config.activation, alpha=config.width_multiplier,
            kernel_init=config.kernel_init, conv_norm=config.conv_norm,
            weights=config.weights or None, freeze_base=False)
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
_OPTIONAL_STATE = {"planned_steps": "--train_minutes", "ema_momentum": "--ema_momentum"}


def _saved_state_names(path: str, flag: str) -> set[str]:
    """The top-level names a checkpoint holds (``model``, ``step``, ``planned_steps``, ...).

    Raises:
        TrainingError: ``path`` is missing or unreadable, named with ``flag``.
    """
    try:
        return {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    except (tf.errors.OpError, RuntimeError) as err:  # missing, truncated ("too short ...")
        raise TrainingError(f"{flag}: {path} is not a readable checkpoint "
                            f"({str(err).splitlines()[0][:200]})") from None


def _check_resume(latest: str, state: dict, config, workdir: str) -> None:
    """Refuses to resume ``latest`` with flags that add or drop a part of its state."""
    saved = _saved_state_names(latest, f"--workdir={workdir}")
    for name, flag in _OPTIONAL_STATE.items():
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


def _set_base_trainable(model: keras.Model, trainable: bool) -> None:
    layers = models.base_layers(model)
    if not layers and not trainable:
        raise TrainingError("this architecture has no feature extractor to freeze")
    for layer in layers:
        layer.trainable = trainable


def _restore_init_checkpoint(model: keras.Model, path: str, strategy=None) -> None:
    if os.path.isdir(path):
        path = tf.train.latest_checkpoint(os.path.join(path, CHECKPOINT_DIR)) or \
            tf.train.latest_checkpoint(path)
    if not path:
        raise TrainingError("--init_checkpoint names no checkpoint (a run's workdir or a "
                            "checkpoint prefix)")
    # A run with --ema_momentum is used through its weight average, as its evaluation and
    # best model were: an optimizer built like every run's (a schedule, so its variables are
    # the step counter, then the averages, then its own slots) reads the averages back.
    saved = _saved_state_names(path, "--init_checkpoint")
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


def _make_datasets(config, setup: Setup, strategy, start_step: int):
    batch = config.batch_size

    def train_fn(ctx):
        dataset = input_pipeline.create_dataset(
            config.data_dir, **_selection(config, True),
            batch_size=ctx.get_per_replica_batch_size(batch), image_size=setup.cache_image_size,
            training=True, cache=config.cache, shuffle_buffer=config.shuffle_buffer,
            seed=config.seed, start_epoch=start_step // setup.data_steps_per_epoch,
            deterministic=config.deterministic, input_context=ctx,
            data_service_address=config.data_service_address or None)
        # The data position is a function of the step: skip into the current data epoch.
        return dataset.skip(start_step % setup.data_steps_per_epoch)

    def eval_fn(ctx):
        return input_pipeline.create_dataset(
            config.data_dir, **_selection(config, False),
            batch_size=ctx.get_per_replica_batch_size(batch), image_size=setup.cache_image_size,
            training=False, cache=config.cache, deterministic=True, input_context=ctx)

    return (strategy.distribute_datasets_from_function(train_fn),
            strategy.distribute_datasets_from_function(eval_fn))


def _no_space(err: Exception) -> bool:
    return (isinstance(err, OSError) and err.errno == errno.ENOSPC) or (
        isinstance(err, tf.errors.ResourceExhaustedError)) or "No space left" in str(err)


# --train_minutes times this epoch: the first also traces the step and fills the cache.
_BUDGET_EPOCH = 2


def _plan_steps(config, steps_per_epoch: int, history: list[dict], strategy) -> int:
    """``--train_minutes``: the steps of the whole epochs that fit the budget (at least the
    epochs run, at most ``--epochs``), judged by the last epoch's training rate (per step: a
    resumed epoch timed only its rest) and evaluation time; with several workers the slowest
    one's plan, so that all agree."""
    spent = sum(h["seconds"] + h.get("eval_seconds", 0.0) for h in history)
    steps = history[-1].get("timed_steps", steps_per_epoch)
    last = (history[-1]["seconds"] * steps_per_epoch / max(1, steps)
            + history[-1].get("eval_seconds", 0.0))
    more = int((config.train_minutes * 60 - spent) // last) if last > 0 else config.epochs
    epochs = min(config.epochs, len(history) + max(0, more))
    return distribute.min_over_workers(strategy, epochs * steps_per_epoch)


def _save(manager: tf.train.CheckpointManager, step: int) -> None:
    """Saves a checkpoint; a full disk is one error line, with no half-written one left."""
    try:
        manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as err:
        if not _no_space(err):
            raise
        for partial in glob.glob(os.path.join(manager.directory, "*_temp*")):
            shutil.rmtree(partial, ignore_errors=True)
        raise TrainingError(f"no space left on the device while saving the checkpoint of step "
                            f"{step} to {manager.directory}; the earlier checkpoints are kept: "
                            "free some space and rerun the same command to resume") from None


def _save_best_model(model, out_dir: str) -> None:
    tmp = os.path.join(out_dir, ".best_model.tmp.keras")
    try:
        model.save(tmp)
    except OSError as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if not _no_space(err):
            raise
        raise TrainingError(f"no space left on the device while saving {out_dir}/{BEST_MODEL}; "
                            "free some space and rerun the same command to resume") from None
    os.replace(tmp, os.path.join(out_dir, BEST_MODEL))


def _better(metric: str, value: float, best: float) -> bool:
    if np.isnan(best):
        return True
    return value < best if metric == "loss" else value > best


def train_and_evaluate(config, workdir: str, swept=()) -> dict:
    """Trains ``config.model`` on ``config.data_dir``, evaluating after every epoch.

    Args:
        config: a ``config.TrainConfig``.
        workdir: run directory (checkpoints, TensorBoard logs, summary.json); running the
            same command again resumes from its latest checkpoint.
        swept: the names of the hyperparameters a sweep varies (shown first in HParams).

    Returns:
        The run summary (also written to ``workdir/summary.json``).

    Raises:
        TrainingError: bad configuration, corrupt data (the shard named), a loss that stays
            non-finite, or a lost peer worker or tf.data service.
    """
    try:
        return _train_and_evaluate(config, workdir, swept)
    except tf.errors.DataLossError as err:
        raise TrainingError(input_pipeline.describe_data_loss(config.data_dir, err)) from None
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as err:
        # A peer worker (or the tf.data service) died or hung: collectives abort with this.
        reason = errors.reason(err, limit=300)
        raise TrainingError(f"lost contact with a peer worker or the tf.data service "
                            f"({type(err).__name__}: {reason}); the checkpoints in the workdir "
                            "are kept: restart every worker with the same command to resume"
                            ) from err


def _train_and_evaluate(config, workdir: str, swept) -> dict:
    # Before anything initialises TensorFlow's devices (resolve_setup lists them).
    try:
        distribute.set_cpu_devices(config.num_cpu_devices)
    except ValueError as err:
        raise TrainingError(str(err)) from None
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise TrainingError(f"--workdir={workdir} is a file, not a directory: choose another "
                            "--workdir")
    setup = resolve_setup(config)
    input_pipeline.set_run_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    precision.apply(setup.policy)
    strategy = distribute.create_strategy(config.distribution)
    out_dir = distribute.task_dir(workdir, strategy)
    chief = distribute.is_chief(strategy)
    if not chief:  # a crashed run's leftovers: this worker resumes from the chief's checkpoints
        shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir, exist_ok=True)

    model, optimizer, schedule, state = _build(config, setup, strategy)
    averaged = list(model.trainable_variables)  # the optimizer's list (--ema_momentum)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                     seed_states=_seed_generator_states(model), **state)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(out_dir, CHECKPOINT_DIR),
                                         max_to_keep=config.keep_checkpoints)
    # Every worker restores the chief's checkpoint (other workers only write throwaway ones),
    # so the workdir must be on storage all workers share.
    latest = tf.train.latest_checkpoint(os.path.join(workdir, CHECKPOINT_DIR))
    if latest:
        _check_resume(latest, state, config, workdir)
        try:
            checkpoint.restore(latest).assert_existing_objects_matched()
        except (ValueError, AssertionError) as err:
            # Shapes that do not fit: the workdir holds a run of another architecture or size.
            reason = str(err).strip().splitlines()[0][:200]
            raise TrainingError(
                f"--workdir={workdir} holds a run that does not fit --model={config.model} "
                f"--image_size={setup.image_size} ({reason}): resume it with its own flags "
                "or choose another --workdir") from None
        print(f"Resumed from step {int(state['step'])} ({latest})", flush=True)
    elif config.init_checkpoint:
        _restore_init_checkpoint(model, config.init_checkpoint, strategy)
    start_step = int(state["step"])
    if not distribute.same_on_all_workers(strategy, start_step):
        raise TrainingError(f"this worker starts at step {start_step} but another does not: "
                            f"every worker must see the chief's {workdir}/{CHECKPOINT_DIR} "
                            "(put --workdir on shared storage)")
    resumed_from = start_step if latest else None
    history_path = os.path.join(out_dir, HISTORY_FILE)
    history = json.load(open(history_path)) if resumed_from and os.path.exists(
        history_path) else []
    # Epochs after the restored checkpoint (one without a finite step keeps none) run again.
    history = [h for h in history if h["step"] <= (resumed_from or 0)]

    try:
        train_ds, eval_ds = _make_datasets(config, setup, strategy, start_step)
    except (FileNotFoundError, ValueError) as err:  # a shard missing or not the manifest's
        raise TrainingError(str(err)) from None
    writers = summaries.create_writers(out_dir, enabled=chief)
    if chief and resumed_from is None:
        summaries.write_hparams(writers, config, setup, os.path.basename(workdir.rstrip("/")),
                                swept=swept)
    eval_step = make_eval_step(
        model, strategy, setup, crop_fraction=max(config.crop_scale) if config.crop_scale else None)
    iterator = iter(train_ds)
    steps_per_epoch = setup.steps_per_epoch
    total_steps = int(state["planned_steps"]) if "planned_steps" in state else \
        steps_per_epoch * config.epochs
    profile = tuple(config.profile_steps) if len(config.profile_steps) == 2 else None
    train_step, train_metrics, frozen = None, None, None
    epoch_times, images_per_second = [], []
    best_metric = float(state["best_metric"].numpy())

    step = start_step
    # SIGINT/SIGTERM: finish the step call, save it, stop with one line (interrupt.py).
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    with interrupt.stop_signals(enabled=not multi_worker) as stop:
        while step < total_steps:
            epoch = step // steps_per_epoch
            want_frozen = config.freeze_base or epoch < config.freeze_base_epochs
            if want_frozen != frozen:
                if want_frozen or frozen is not None:
                    _set_base_trainable(model, not want_frozen)
                frozen = want_frozen
                # New trainable variables: a new step function (and a fresh trace).
                train_step, train_metrics = make_train_step(model, optimizer, strategy, config,
                                                            setup, state)
            # From an uncached pipeline of its own: one batch taken from the cached eval
            # pipeline would leave its cache half-written (and tf.data warns so).
            if step == 0 and config.summary_images and chief:
                preview = input_pipeline.create_dataset(
                    config.data_dir, **_selection(config, False),
                    batch_size=config.summary_images, image_size=setup.cache_image_size,
                    training=False, cache="none", deterministic=True)
                summaries.write_augmented_images(writers["train"], preview, config, setup)
            for metric in train_metrics.values():
                metric.reset_state()
            epoch_end = (epoch + 1) * steps_per_epoch
            epoch_start_step, skipped_before = step, int(state["non_finite_total"])
            epochs = -(-total_steps // steps_per_epoch)  # as planned (--train_minutes)
            bar = progress_lib.Progress((epoch_end - step) * config.batch_size,
                                        desc=f"epoch {epoch + 1}/{epochs}",
                                        enabled=config.progress and chief)
            start = time.perf_counter()
            while step < epoch_end:
                n = min(config.steps_per_execution, epoch_end - step)
                if config.checkpoint_every_steps:
                    n = min(n, config.checkpoint_every_steps - step % config.checkpoint_every_steps)
                profiling = bool(profile) and profile[0] <= step < profile[1]
                # In the window (and the step before it, which traces the function), one step
                # per call of the loop-free step: xprof finds each by its step marker.
                single = bool(profile) and profile[0] - 1 <= step < profile[1]
                if profile and step < profile[1]:
                    n = min(n, profile[0] - 1 - step) if not single else 1
                    if step == profile[0] and chief:
                        tf.profiler.experimental.start(os.path.join(out_dir, "profile"))
                marker = (tf.profiler.experimental.Trace("train", step_num=step, _r=1)
                          if profiling else contextlib.nullcontext())
                with marker:
                    if single:
                        train_step.single(iterator)
                    else:
                        train_step(iterator, tf.constant(n, tf.int64))
                step = int(state["step"])
                bar.update(n * config.batch_size)
                if profile and step == profile[1] and chief:
                    tf.profiler.experimental.stop()
                    logging.info("profiler trace of steps %d-%d in %s/profile", *profile, out_dir)
                summaries.check_finite(state, config.max_non_finite_steps, setup.policy)
                if stop["signum"] is not None:
                    bar.close()
                    _save(manager, step)
                    raise interrupt.Interrupted(stop["signum"], step, manager.directory)
                if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0 \
                        and step < epoch_end:
                    _save(manager, step)
            elapsed = time.perf_counter() - start
            bar.close()
            epoch_times.append(elapsed)
            images_per_second.append(bar.count / elapsed if elapsed else 0.0)
            train_result = {k: float(m.result()) for k, m in train_metrics.items()}
            skipped = int(state["non_finite_total"]) - skipped_before
            no_finite_step = skipped >= step - epoch_start_step
            if no_finite_step:  # no metric saw a batch: say so, not 0.0
                train_result = {k: float("nan") for k in train_result}
            eval_start = time.perf_counter()
            # With --ema_momentum the averaged weights are evaluated and kept as the best model.
            with optim.averaged_weights(optimizer, averaged):
                eval_result = summaries.run_eval(eval_step, eval_ds)
                eval_seconds = time.perf_counter() - eval_start
                metric = eval_result[config.early_stopping_metric]
                # An epoch without one finite step changed nothing: it is never the best.
                improved = not no_finite_step and _better(config.early_stopping_metric, metric,
                                                          best_metric)
                if improved and chief:
                    _save_best_model(model, out_dir)
            lr = float(schedule(step - 1))  # the rate of the epoch's last step
            train_seconds = elapsed + sum(h["seconds"] for h in history)
            summaries.write_epoch(writers, step, train_result, eval_result, lr=lr,
                                  images_per_second=images_per_second[-1],
                                  step_time=elapsed / max(1, bar.count / config.batch_size),
                                  train_seconds=train_seconds)
            if improved:
                best_metric = metric
                state["best_metric"].assign(metric)
                state["bad_epochs"].assign(0)
            else:
                state["bad_epochs"].assign_add(1)
            history.append({"epoch": epoch + 1, "step": step, "seconds": elapsed,
                            "timed_steps": step - epoch_start_step,
                            "eval_seconds": eval_seconds,
                            "images_per_second": images_per_second[-1], "learning_rate": lr,
                            "train": train_result, "eval": eval_result,
                            "non_finite_steps": skipped})
            plan = None  # before the checkpoint of this epoch, which keeps it
            if config.train_minutes and epoch + 1 == _BUDGET_EPOCH:
                plan = _plan_steps(config, steps_per_epoch, history, strategy)
                state["planned_steps"].assign(plan)
            if no_finite_step:
                logging.warning("epoch %d had no finite step: no checkpoint of it is kept",
                                epoch + 1)
            else:
                _save(manager, step)
            if chief:
                write_json_atomic(history_path, history)
                time_to_accuracy.write_report(out_dir, history,
                                              title=os.path.basename(workdir.rstrip("/")))
            print(f"epoch {epoch + 1}/{epochs}: train loss {train_result['loss']:.4f} "
                  f"acc {train_result['accuracy']:.4f} | eval loss {eval_result['loss']:.4f} "
                  f"acc {eval_result['accuracy']:.4f} auc {eval_result['auc']:.4f}", flush=True)
            if plan is not None:
                total_steps = plan
                print(f"--train_minutes={config.train_minutes:g}: epoch {epoch + 1} took "
                      f"{(elapsed + eval_seconds) / 60:.2f} minutes with evaluation; planned "
                      f"{plan // steps_per_epoch} of --epochs={config.epochs} epochs "
                      f"({plan} steps)", flush=True)
            if config.early_stopping_patience and \
                    int(state["bad_epochs"]) >= config.early_stopping_patience:
                logging.info("early stopping after epoch %d", epoch + 1)
                break

    summary = {
        "model": config.model, "image_size": setup.image_size, "device": precision.device_kind(),
        "precision": setup.policy, "jit_compile": setup.jit_compile,
        "replicas": strategy.num_replicas_in_sync, "steps": int(state["step"]),
        "resumed_from_step": resumed_from, "epochs_run": len(history),
        "planned_steps": total_steps,
        "final": history[-1] if history else None,
        "best": {"metric": config.early_stopping_metric, "value": best_metric},
        "epoch_seconds": epoch_times, "images_per_second": images_per_second,
        "non_finite_steps": int(state["non_finite_total"]),
        "weights_sha256": distribute.weights_digest(model.weights),
        "config": dataclasses.asdict(config),
    }
    # Logged by every worker: synchronous replicas must agree on it.
    logging.info("final weights sha256 %s", summary["weights_sha256"])
    if chief:
        summaries.write_final_hparams_metrics(writers, summary)
        write_json_atomic(os.path.join(out_dir, SUMMARY_FILE), summary)
    else:
        shutil.rmtree(out_dir, ignore_errors=True)
    return summary


__all__ = ["TrainingError", "resolve_setup", "train_and_evaluate", "augment"]

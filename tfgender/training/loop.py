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

import dataclasses
import os
import shutil
import time

import keras
import tensorflow as tf
from absl import logging

from tfgender import config as config_lib
from tfgender import devices, errors, models
from tfgender import progress as progress_lib
from tfgender.evaluation import metrics, summaries
from tfgender.files import CHECKPOINT_DIR, RUN_CONFIG_FILE, SUMMARY_FILE, write_json_atomic
from tfgender.input import pipeline as input_pipeline
from tfgender.training import (
    TrainingError,
    actions,
    distribute,
    interrupt,
    optim,
    precision,
)
from tfgender.training import state as state_lib
from tfgender.training.steps import make_eval_step, make_train_step


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


def check_weights(config) -> None:
    """The run's ``--weights`` resolve to a readable file of its model (or none), as its model
    build will resolve them (``models.resolve_weights``).

    Raises:
        TrainingError: one line naming the flag and the file, or the folder to put it in.
    """
    size = config.image_size or models.MODELS[config.model].default_image_size
    try:
        models.resolve_weights(config.model, config.weights, size, config.width_multiplier)
    except models.WeightsError as err:
        raise TrainingError(f"--weights={config.weights}: {err}") from None


def resolve_setup(config) -> Setup:
    """Validates ``config`` and resolves its ``auto`` choices.

    Raises:
        TrainingError: unknown model, image size too small, empty split, batch too large.
    """
    if config.model not in models.MODELS:
        raise TrainingError(f"unknown model {config.model!r}; known models: "
                            f"{', '.join(sorted(models.MODELS))}")
    info = models.MODELS[config.model]
    image_size = config.image_size or info.default_image_size
    try:
        models.check_image_size(config.model, image_size)
    except ValueError as err:
        raise TrainingError(f"--{err}") from None
    try:
        config_lib.check_train(config)
    except ValueError as err:
        raise TrainingError(str(err)) from None
    check_weights(config)  # before the data and the precision calibration: fails in seconds
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
                                           model_options=models.changed_options(config)),
        jit_compile=jit_compile,
        normalization=info.normalization, train_records=train_records,
        eval_records=eval_records, steps_per_epoch=config.steps_per_epoch or data_steps,
        data_steps_per_epoch=data_steps)


def set_base_trainable(model: keras.Model, trainable: bool, batch_norm: str = "train") -> None:
    """Freezes or unfreezes the feature extractor; with ``batch_norm="frozen"`` its batch
    norms stay frozen (inference mode) when it trains (Keras 3 runs a non-trainable
    BatchNormalization on its moving statistics, also under ``training=True``)."""
    layers = models.base_layers(model)
    if not layers and not trainable:
        raise TrainingError("this architecture has no feature extractor to freeze")
    for layer in layers:
        layer.trainable = trainable
        if batch_norm == "frozen":
            for inner in (layer, *models.walk_layers(layer)):
                if isinstance(inner, keras.layers.BatchNormalization):
                    inner.trainable = False



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



@dataclasses.dataclass
class _Run:
    """One run's objects and counters, passed between the phases of ``train_and_evaluate``."""

    config: object
    workdir: str
    setup: Setup
    strategy: tf.distribute.Strategy
    out_dir: str
    chief: bool
    model: keras.Model
    optimizer: object
    schedule: object
    state: dict
    manager: tf.train.CheckpointManager
    step: int = 0
    total_steps: int = 0
    resumed_from: int | None = None
    history: actions.History | None = None
    best: actions.BestMetric | None = None
    epoch_times: list = dataclasses.field(default_factory=list)
    images_per_second: list = dataclasses.field(default_factory=list)
    writers: dict | None = None
    averaged: list = dataclasses.field(default_factory=list)  # --ema_momentum: all it averages

    @property
    def title(self) -> str:
        return os.path.basename(self.workdir.rstrip("/"))


def _train_and_evaluate(config, workdir: str, swept) -> dict:
    run = _start(config, workdir)
    _restore(run)
    try:
        train_ds, eval_ds = _make_datasets(config, run.setup, run.strategy, run.step)
    except (FileNotFoundError, ValueError) as err:  # a shard missing or not the manifest's
        raise TrainingError(str(err)) from None
    run.writers = summaries.create_writers(run.out_dir, enabled=run.chief)
    if run.chief and run.resumed_from is None:
        summaries.write_hparams(run.writers, config, run.setup, run.title, swept=swept)
    eval_step = make_eval_step(run.model, run.strategy, run.setup,
                               crop_fraction=max(config.crop_scale) if config.crop_scale else None)
    iterator = iter(train_ds)
    profile = actions.ProfileWindow(config.profile_steps, run.out_dir, run.chief)
    train_step, train_metrics, frozen = None, None, None
    # SIGINT/SIGTERM: finish the step call, save it, stop with one line (interrupt.py).
    multi_worker = isinstance(run.strategy, tf.distribute.MultiWorkerMirroredStrategy)
    with interrupt.stop_signals(enabled=not multi_worker) as stop:
        # A run that stopped early and is started again stays stopped (unless its patience grew).
        while run.step < run.total_steps and not run.best.should_stop:
            epoch = run.step // run.setup.steps_per_epoch
            want_frozen = config.freeze_base or epoch < config.freeze_base_epochs
            if want_frozen != frozen:
                if want_frozen or frozen is not None or config.base_batch_norm != "train":
                    set_base_trainable(run.model, not want_frozen, config.base_batch_norm)
                frozen = want_frozen
                # New trainable variables: a new step function (and a fresh trace).
                train_step, train_metrics = make_train_step(
                    run.model, run.optimizer, run.strategy, config, run.setup, run.state)
            if run.step == 0 and config.summary_images and run.chief:
                _write_preview(run)
            for metric in train_metrics.values():
                metric.reset_state()
            epochs = -(-run.total_steps // run.setup.steps_per_epoch)  # as planned
            epoch_start, skipped_before = run.step, int(run.state["non_finite_total"])
            elapsed, images = _train_epoch(run, train_step, iterator, profile, stop,
                                           desc=f"epoch {epoch + 1}/{epochs}")
            train_result = {k: float(m.result()) for k, m in train_metrics.items()}
            skipped = int(run.state["non_finite_total"]) - skipped_before
            if _end_epoch(run, epoch, epochs, elapsed, images, train_result, skipped,
                          run.step - epoch_start, eval_step, eval_ds):
                break
    return _finish(run)


def _start(config, workdir: str) -> _Run:
    """Devices, precision and strategy for this run, its directory, and its built state."""
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
    devices.apply(setup.policy)
    strategy = distribute.create_strategy(config.distribution)
    out_dir = distribute.task_dir(workdir, strategy)
    chief = distribute.is_chief(strategy)
    if not chief:  # a crashed run's leftovers: this worker resumes from the chief's checkpoints
        shutil.rmtree(out_dir, ignore_errors=True)
    try:  # a read-only or impossible --workdir: one line, before the model is built
        os.makedirs(out_dir, exist_ok=True)
        # What --checkpoint=latest rebuilds from before summary.json exists. Written by the
        # run's first start only: a later start with another model is refused (_restore), and
        # must not overwrite the facts of the run the folder holds.
        facts = os.path.join(out_dir, RUN_CONFIG_FILE)
        if chief and not os.path.exists(facts):
            write_json_atomic(facts, _run_facts(config, setup))
        elif not os.access(out_dir, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as err:
        raise TrainingError(f"--workdir={workdir}: cannot write there: "
                            f"{err.strerror or err}") from None
    model, optimizer, schedule, counters = state_lib.build(config, setup, strategy)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                     seed_states=state_lib.seed_generator_states(model),
                                     **counters)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(out_dir, CHECKPOINT_DIR),
                                         max_to_keep=config.keep_checkpoints)
    return _Run(config=config, workdir=workdir, setup=setup, strategy=strategy,
                out_dir=out_dir, chief=chief, model=model, optimizer=optimizer,
                schedule=schedule, state=counters, manager=manager,
                averaged=list(model.trainable_variables))  # before any freezing: every one


def _run_facts(config, setup: Setup) -> dict:
    """The facts that rebuild a run's model, as in its summary (``predict.read_summary``)."""
    return {"model": config.model, "image_size": setup.image_size,
            "precision": setup.policy, "config": dataclasses.asdict(config)}


def _restore(run: _Run) -> None:
    """Resumes the run's latest checkpoint, or starts from ``--init_checkpoint``'s weights."""
    config, workdir, state = run.config, run.workdir, run.state
    # Every worker restores the chief's checkpoint (other workers only write throwaway ones),
    # so the workdir must be on storage all workers share.
    latest = tf.train.latest_checkpoint(os.path.join(workdir, CHECKPOINT_DIR))
    if latest:
        state_lib.check_resume(latest, state, config, workdir)
        try:
            run.manager.checkpoint.restore(latest).assert_existing_objects_matched()
        except (ValueError, AssertionError) as err:
            # Shapes that do not fit: the workdir holds a run of another architecture or size.
            reason = str(err).strip().splitlines()[0][:200]
            raise TrainingError(
                f"--workdir={workdir} holds a run that does not fit --model={config.model} "
                f"--image_size={run.setup.image_size} ({reason}): resume it with its own flags "
                "or choose another --workdir") from None
        print(f"Resumed from step {int(state['step'])} ({latest})", flush=True)
    elif config.init_checkpoint:
        state_lib.restore_init_checkpoint(run.model, config.init_checkpoint, run.strategy)
    run.step = int(state["step"])
    if not distribute.same_on_all_workers(run.strategy, run.step):
        raise TrainingError(f"this worker starts at step {run.step} but another does not: "
                            f"every worker must see the chief's {workdir}/{CHECKPOINT_DIR} "
                            "(put --workdir on shared storage)")
    run.resumed_from = run.step if latest else None
    run.history = actions.History(run.out_dir, run.title, run.chief, run.resumed_from)
    run.best = actions.BestMetric(config.early_stopping_metric, config.early_stopping_patience,
                                  state, run.out_dir, run.chief, run.setup.normalization)
    run.total_steps = int(state["planned_steps"]) if "planned_steps" in state else \
        run.setup.steps_per_epoch * config.epochs


def _write_preview(run: _Run) -> None:
    """Augmented training images in TensorBoard, from an uncached pipeline of their own: one
    batch taken from the cached eval pipeline would leave its cache half-written."""
    config = run.config
    preview = input_pipeline.create_dataset(
        config.data_dir, **_selection(config, False), batch_size=config.summary_images,
        image_size=run.setup.cache_image_size, training=False, cache="none",
        deterministic=True)
    summaries.write_augmented_images(run.writers["train"], preview, config, run.setup)


def _train_epoch(run: _Run, train_step, iterator, profile: actions.ProfileWindow, stop,
                 desc: str) -> tuple[float, int]:
    """Runs the steps to the end of the current epoch; returns its seconds and images."""
    config, state = run.config, run.state
    epoch_end = (run.step // run.setup.steps_per_epoch + 1) * run.setup.steps_per_epoch
    bar = progress_lib.Progress((epoch_end - run.step) * config.batch_size, desc=desc,
                                enabled=config.progress and run.chief)
    start = time.perf_counter()
    while run.step < epoch_end:
        n, single = actions.next_call(run.step, epoch_end, config.steps_per_execution,
                                      config.checkpoint_every_steps, profile.steps)
        with profile.marker(run.step):
            if single:
                train_step.single(iterator)
            else:
                train_step(iterator, tf.constant(n, tf.int64))
        run.step = int(state["step"])
        bar.update(n * config.batch_size)
        profile.after(run.step)
        actions.check_finite(state, config.max_non_finite_steps, run.setup.policy)
        if stop["signum"] is not None:
            bar.close()
            state_lib.save(run.manager, run.step)
            raise interrupt.Interrupted(stop["signum"], run.step, run.manager.directory)
        if config.checkpoint_every_steps and run.step % config.checkpoint_every_steps == 0 \
                and run.step < epoch_end:
            state_lib.save(run.manager, run.step)
    elapsed = time.perf_counter() - start
    bar.close()
    return elapsed, bar.count


def _end_epoch(run: _Run, epoch: int, epochs: int, elapsed: float, images: int,
               train_result: dict, skipped: int, steps: int, eval_step, eval_ds) -> bool:
    """Evaluates the epoch and runs the post-evaluation actions: the best model and early
    stopping, TensorBoard scalars, the history, the plan of ``--train_minutes``, a checkpoint.
    True: stop early."""
    config, state = run.config, run.state
    run.epoch_times.append(elapsed)
    run.images_per_second.append(images / elapsed if elapsed else 0.0)
    no_finite_step = skipped >= steps
    if no_finite_step:  # no metric saw a batch: say so, not 0.0
        train_result = {k: float("nan") for k in train_result}
    eval_start = time.perf_counter()
    # With --ema_momentum the averaged weights are evaluated and kept as the best model.
    with optim.averaged_weights(run.optimizer, run.averaged):
        eval_result = metrics.run_eval(eval_step, eval_ds)
        eval_seconds = time.perf_counter() - eval_start
        run.best.update(eval_result, run.model, valid=not no_finite_step)
    lr = float(run.schedule(run.step - 1))  # the rate of the epoch's last step
    train_seconds = elapsed + run.history.train_seconds()
    summaries.write_epoch(run.writers, run.step, train_result, eval_result, lr=lr,
                          images_per_second=run.images_per_second[-1],
                          step_time=elapsed / max(1, images / config.batch_size),
                          train_seconds=train_seconds)
    run.history.append({"epoch": epoch + 1, "step": run.step, "seconds": elapsed,
                        "timed_steps": steps, "eval_seconds": eval_seconds,
                        "images_per_second": run.images_per_second[-1], "learning_rate": lr,
                        "train": train_result, "eval": eval_result,
                        "non_finite_steps": skipped})
    plan = None  # before the checkpoint of this epoch, which keeps it
    if config.train_minutes and epoch + 1 == actions.BUDGET_EPOCH:
        plan = actions.plan_steps(config, run.setup.steps_per_epoch, run.history.epochs,
                                  run.strategy)
        state["planned_steps"].assign(plan)
    if no_finite_step:
        logging.warning("epoch %d had no finite step: no checkpoint of it is kept", epoch + 1)
    else:
        state_lib.save(run.manager, run.step)
    print(f"epoch {epoch + 1}/{epochs}: train loss {train_result['loss']:.4f} "
          f"acc {train_result['accuracy']:.4f} | eval loss {eval_result['loss']:.4f} "
          f"acc {eval_result['accuracy']:.4f} auc {eval_result['auc']:.4f}", flush=True)
    if plan is not None:
        run.total_steps = plan
        print(f"--train_minutes={config.train_minutes:g}: epoch {epoch + 1} took "
              f"{(elapsed + eval_seconds) / 60:.2f} minutes with evaluation; planned "
              f"{plan // run.setup.steps_per_epoch} of --epochs={config.epochs} epochs "
              f"({plan} steps)", flush=True)
    if run.best.should_stop:
        logging.info("early stopping after epoch %d", epoch + 1)
        return True
    return False


def _finish(run: _Run) -> dict:
    """The run's summary, written by the chief; other workers remove their throwaway files."""
    config, state = run.config, run.state
    summary = {
        **_run_facts(config, run.setup), "device": devices.device_kind(),
        "jit_compile": run.setup.jit_compile, "replicas": run.strategy.num_replicas_in_sync,
        "steps": int(state["step"]), "resumed_from_step": run.resumed_from,
        "epochs_run": len(run.history), "planned_steps": run.total_steps,
        "final": run.history.last,
        "best": {"metric": config.early_stopping_metric, "value": run.best.value},
        "epoch_seconds": run.epoch_times, "images_per_second": run.images_per_second,
        "non_finite_steps": int(state["non_finite_total"]),
        "weights_sha256": distribute.weights_digest(run.model.weights),
    }
    # Logged by every worker: synchronous replicas must agree on it.
    logging.info("final weights sha256 %s", summary["weights_sha256"])
    if run.chief:
        summaries.write_final_hparams_metrics(run.writers, summary)
        write_json_atomic(os.path.join(run.out_dir, SUMMARY_FILE), summary)
    else:
        shutil.rmtree(run.out_dir, ignore_errors=True)
    return summary


__all__ = ["TrainingError", "resolve_setup", "train_and_evaluate"]

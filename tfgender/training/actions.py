"""What a run does around its steps and after each epoch, apart from the steps themselves.

``next_call`` decides how many steps the next call of the step function runs (the three
interval rules: ``--steps_per_execution``, ``--checkpoint_every_steps`` and the profile
window); ``ProfileWindow`` starts and stops the profiler and marks each profiled step; after
an epoch, ``better`` decides whether it is the best so far, ``save_best_model`` keeps it and
``plan_steps`` turns ``--train_minutes`` into a number of steps; ``check_finite`` stops a run
whose loss stays non-finite. The two post-evaluation actions are objects that keep their own
state: ``BestMetric`` (the best model and early stopping, counted in the checkpointed
counters so a resumed run goes on counting) and ``History`` (``history.json`` and the
time-to-accuracy report).
"""

from __future__ import annotations

import contextlib
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from tfgender import models
from tfgender.evaluation import time_to_accuracy
from tfgender.files import BEST_MODEL, HISTORY_FILE, write_json_atomic
from tfgender.training import TrainingError, distribute, state


def next_call(step: int, epoch_end: int, steps_per_execution: int, checkpoint_every: int,
              profile: tuple[int, int] | None) -> tuple[int, bool]:
    """The steps the next call runs from ``step``, and whether it is the loop-free single step.

    A call never crosses the epoch's end or a ``checkpoint_every`` boundary. With a profile
    window ``(start, end)``, the step before ``start`` (which traces the loop-free function)
    and each step of the window run one per call, so that xprof finds each by its marker.
    """
    n = min(steps_per_execution, epoch_end - step)
    if checkpoint_every:
        n = min(n, checkpoint_every - step % checkpoint_every)
    single = bool(profile) and profile[0] - 1 <= step < profile[1]
    if profile and step < profile[1]:
        n = min(n, profile[0] - 1 - step) if not single else 1
    return n, single


class ProfileWindow:
    """``--profile_steps=START,END``: a profiler trace of those steps, on the chief only."""

    def __init__(self, profile_steps, out_dir: str, chief: bool):
        self.steps = tuple(profile_steps) if len(profile_steps) == 2 else None
        self.out_dir, self.chief = out_dir, chief

    def marker(self, step: int):
        """Starts the trace at the window's first step; the step marker of a profiled step."""
        if not self.steps or not self.steps[0] <= step < self.steps[1]:
            return contextlib.nullcontext()
        if step == self.steps[0] and self.chief:
            tf.profiler.experimental.start(os.path.join(self.out_dir, "profile"))
        return tf.profiler.experimental.Trace("train", step_num=step, _r=1)

    def after(self, step: int) -> None:
        """Stops the trace once the window's last step ran."""
        if self.steps and step == self.steps[1] and self.chief:
            tf.profiler.experimental.stop()
            logging.info("profiler trace of steps %d-%d in %s/profile", *self.steps,
                         self.out_dir)


# --train_minutes times this epoch: the first also traces the step and fills the cache.
BUDGET_EPOCH = 2


def plan_steps(config, steps_per_epoch: int, history: list[dict], strategy) -> int:
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



def save_best_model(model, out_dir: str) -> None:
    """Writes ``best_model.keras`` (temporary name, then rename)."""
    tmp = os.path.join(out_dir, ".best_model.tmp.keras")
    try:
        model.save(tmp)
    except OSError as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if not state.no_space(err):
            raise
        raise TrainingError(f"no space left on the device while saving {out_dir}/{BEST_MODEL}; "
                            "free some space and rerun the same command to resume") from None
    os.replace(tmp, os.path.join(out_dir, BEST_MODEL))


def better(metric: str, value: float, best: float) -> bool:
    if np.isnan(best):
        return True
    return value < best if metric == "loss" else value > best


class BestMetric:
    """After each evaluation: keeps the best epoch's model, and stops a run that stopped
    improving (``--early_stopping_metric``, ``--early_stopping_patience``).

    The best value and the epochs since it live in the run's checkpointed counters
    (``best_metric``, ``bad_epochs``), so a resumed run compares with the best before the
    interruption and goes on counting. Only the chief writes ``best_model.keras``.
    """

    def __init__(self, metric: str, patience: int, counters: dict, out_dir: str, chief: bool,
                 normalization: str = ""):
        self.metric, self.patience = metric, patience
        self.counters, self.out_dir, self.chief = counters, out_dir, chief
        self.normalization = normalization  # saved inside best_model.keras
        self._saved = None  # the model the file holds: built once, it shares the run's weights

    @property
    def value(self) -> float:
        return float(self.counters["best_metric"].numpy())

    def update(self, result: dict, model, valid: bool = True) -> bool:
        """Records an epoch's evaluation ``result``; True if it is the best so far (then the
        model, with the weights it was evaluated with, is saved). An epoch that is not
        ``valid`` (no finite step: it changed nothing) is never the best."""
        value = result[self.metric]
        improved = valid and better(self.metric, value, self.value)
        if improved:
            if self.chief:
                if self._saved is None:  # with normalisation: the file takes [0, 255] pixels
                    self._saved = (models.with_normalization(model, self.normalization)
                                   if self.normalization else model)
                save_best_model(self._saved, self.out_dir)
            self.counters["best_metric"].assign(value)
            self.counters["bad_epochs"].assign(0)
        else:
            self.counters["bad_epochs"].assign_add(1)
        return improved

    @property
    def should_stop(self) -> bool:
        return bool(self.patience) and int(self.counters["bad_epochs"]) >= self.patience


class History:
    """The run's epochs, one dict each, in ``history.json`` and the time-to-accuracy report.

    A resumed run keeps the epochs up to its restored checkpoint; the ones after it run again.
    Only the chief writes the files.
    """

    def __init__(self, out_dir: str, title: str, chief: bool, resumed_from: int | None = None):
        self.out_dir, self.title, self.chief = out_dir, title, chief
        self.path = os.path.join(out_dir, HISTORY_FILE)
        epochs = []
        if resumed_from and os.path.exists(self.path):
            with open(self.path) as f:
                epochs = json.load(f)
        # Epochs after the restored checkpoint (one without a finite step keeps none).
        self.epochs = [h for h in epochs if h["step"] <= (resumed_from or 0)]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def last(self) -> dict | None:
        return self.epochs[-1] if self.epochs else None

    def train_seconds(self) -> float:
        return sum(h["seconds"] for h in self.epochs)

    def append(self, entry: dict) -> None:
        self.epochs.append(entry)
        if self.chief:
            write_json_atomic(self.path, self.epochs)
            time_to_accuracy.write_report(self.out_dir, self.epochs, title=self.title)


class NonFiniteLossError(TrainingError):
    """The loss stayed non-finite; the last good checkpoint is kept. A ``TrainingError``, as
    ``train_and_evaluate`` documents: callers catch that one class."""


def check_finite(state: dict, max_non_finite_steps: int, policy: str = "float32") -> None:
    """Raises when the loss has been non-finite for too many consecutive steps.

    Skipped steps changed nothing (``steps.apply_if``), so the checkpoints written so far
    hold finite weights.

    Args:
        state: the run's counters (``step``, ``non_finite``, ``non_finite_total``).
        max_non_finite_steps: the limit of consecutive skipped steps (0: no limit).
        policy: the run's precision, for the advice.

    Raises:
        NonFiniteLossError: naming the step; checkpoints written so far are kept.
    """
    consecutive = int(state["non_finite"])
    if consecutive and consecutive % 10 == 1:
        logging.warning("non-finite loss at step %d (%d skipped in a row, %d in all)",
                        int(state["step"]), consecutive, int(state["non_finite_total"]))
    if max_non_finite_steps and consecutive >= max_non_finite_steps:
        advice = ("lower --learning_rate or check the data" if policy == "float32" else
                  f"lower --learning_rate, or use --precision=float32 (this run is {policy})")
        raise NonFiniteLossError(
            f"the loss was non-finite for {consecutive} consecutive steps (up to step "
            f"{int(state['step'])}); stopping. Those steps were skipped and the checkpoints "
            f"saved before them are kept: {advice}, and run again.")

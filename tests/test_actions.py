"""Tests of training/actions.py: how many steps each call runs, and which epoch is the best."""

from __future__ import annotations

import math

import pytest

from tfgender.training import actions


def _calls(start: int, end: int, per_call: int, checkpoint_every: int = 0, profile=None):
    """The (first step, steps, single) of every call from ``start`` to the epoch's ``end``."""
    calls, step = [], start
    while step < end:
        n, single = actions.next_call(step, end, per_call, checkpoint_every, profile)
        assert n >= 1
        calls.append((step, n, single))
        step += n
    return calls


def test_a_call_runs_steps_per_execution_steps_and_never_crosses_the_epoch():
    assert _calls(0, 10, 4) == [(0, 4, False), (4, 4, False), (8, 2, False)]
    assert _calls(10, 20, 1) == [(s, 1, False) for s in range(10, 20)]


def test_a_call_stops_at_every_checkpoint_boundary():
    # Boundaries at 3, 6, 9: a resumed run at step 5 first runs to 6.
    assert [(s, n) for s, n, _ in _calls(5, 12, 4, checkpoint_every=3)] == \
        [(5, 1), (6, 3), (9, 3)]


def test_the_profile_window_and_the_step_before_it_run_one_loop_free_step_per_call():
    calls = _calls(0, 12, 4, profile=(5, 7))
    assert calls == [(0, 4, False), (4, 1, True), (5, 1, True), (6, 1, True), (7, 4, False),
                     (11, 1, False)]


def test_a_window_that_starts_the_run_traces_on_step_zero():
    assert _calls(0, 4, 8, profile=(1, 2))[:2] == [(0, 1, True), (1, 1, True)]


@pytest.mark.parametrize("metric, value, best, expected", [
    ("accuracy", 0.8, 0.7, True), ("accuracy", 0.7, 0.7, False), ("auc", 0.6, 0.7, False),
    ("loss", 0.3, 0.4, True), ("loss", 0.5, 0.4, False), ("loss", 9.0, math.nan, True),
    ("accuracy", 0.0, math.nan, True)])
def test_better_is_higher_except_for_the_loss_and_anything_beats_nothing(metric, value, best,
                                                                         expected):
    assert actions.better(metric, value, best) is expected


def test_profile_window_needs_a_start_and_an_end(tmp_path):
    assert actions.ProfileWindow([], str(tmp_path), True).steps is None
    assert actions.ProfileWindow([3, 5], str(tmp_path), True).steps == (3, 5)
    window = actions.ProfileWindow([], str(tmp_path), True)
    with window.marker(0):  # no window: a marker that does nothing
        pass
    window.after(5)
    assert not (tmp_path / "profile").exists()


class _Model:
    """Stands in for a Keras model: records what was saved."""

    def __init__(self):
        self.saved = []

    def save(self, path):
        self.saved.append(path)
        open(path, "w").close()


def _counters():
    import numpy as np
    import tensorflow as tf

    return {"best_metric": tf.Variable(np.nan, dtype=tf.float64),
            "bad_epochs": tf.Variable(0, dtype=tf.int64)}


@pytest.mark.parametrize("metric, values, saves, stop_after", [
    # Higher is better: 0.7 and 0.8 improve; two epochs without improvement stop the run.
    ("accuracy", [0.7, 0.8, 0.8, 0.75], [0, 1], 4),
    # The loss: lower is better.
    ("loss", [0.5, 0.6, 0.4, 0.45, 0.41], [0, 2], 5)])
def test_best_metric_keeps_the_best_model_and_stops_after_patience_bad_epochs(
        tmp_path, metric, values, saves, stop_after):
    counters, model = _counters(), _Model()
    best = actions.BestMetric(metric, 2, counters, str(tmp_path), chief=True)
    improved, stopped = [], None
    for epoch, value in enumerate(values, 1):
        improved.append(best.update({metric: value}, model))
        if best.should_stop and stopped is None:
            stopped = epoch
    assert [i for i, x in enumerate(improved) if x] == saves
    assert len(model.saved) == len(saves)
    assert stopped == stop_after
    assert (tmp_path / "best_model.keras").exists()
    assert best.value == min(values) if metric == "loss" else best.value == max(values)


def test_best_metric_counts_on_from_the_checkpointed_counters_and_never_keeps_a_void_epoch(
        tmp_path):
    counters, model = _counters(), _Model()
    first = actions.BestMetric("auc", 2, counters, str(tmp_path), chief=False)
    first.update({"auc": 0.9}, model)
    first.update({"auc": 0.8}, model)
    # A resumed run builds a new action over the restored counters: the count goes on.
    resumed = actions.BestMetric("auc", 2, counters, str(tmp_path), chief=False)
    assert resumed.value == pytest.approx(0.9) and not resumed.should_stop
    assert not resumed.update({"auc": 0.99}, model, valid=False)  # no finite step
    assert resumed.should_stop
    assert model.saved == []  # not the chief: no file
    assert not actions.BestMetric("auc", 0, counters, str(tmp_path), True).should_stop


def test_history_is_written_by_the_chief_and_a_resume_keeps_the_epochs_it_restored(tmp_path):
    import json

    def epoch(n):
        return {"epoch": n, "step": 10 * n, "seconds": 2.0, "eval_seconds": 1.0,
                "train": {"accuracy": 0.5, "loss": 1.0},
                "eval": {"accuracy": 0.5 + n / 10, "loss": 1.0, "auc": 0.6}}

    history = actions.History(str(tmp_path), "run", chief=True)
    for n in (1, 2, 3):
        history.append(epoch(n))
    assert json.loads((tmp_path / "history.json").read_text()) == [epoch(1), epoch(2),
                                                                     epoch(3)]
    assert (tmp_path / "time_to_accuracy.md").exists()
    assert history.train_seconds() == 6.0 and history.last["epoch"] == 3
    # Resumed from the checkpoint of step 20: epoch 3 runs again.
    resumed = actions.History(str(tmp_path), "run", chief=True, resumed_from=20)
    assert [h["epoch"] for h in resumed.epochs] == [1, 2]
    assert len(actions.History(str(tmp_path), "run", chief=True)) == 0  # a fresh run
    other = tmp_path / "worker"
    other.mkdir()
    actions.History(str(other), "run", chief=False).append(epoch(1))
    assert list(other.iterdir()) == []

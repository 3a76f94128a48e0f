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

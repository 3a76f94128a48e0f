"""The progress bar: a rate and ETA measured after the first tick, which holds the warm-up."""

from __future__ import annotations

import io

from tfgender import progress


def test_the_first_tick_says_warming_up_and_later_ticks_a_sane_rate(monkeypatch):
    clock = iter([0.0, 100.0, 100.0, 101.0, 101.0, 102.0, 102.0, 102.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    bar = progress.Progress(1200, desc="epoch 1/8", stream=stream, interval=0.0)
    bar.update(64)  # the first step call: 100 s of tracing
    assert "warming up" in stream.getvalue() and "ETA" not in stream.getvalue()
    bar.update(64)  # one second later
    last = stream.getvalue().split("\r")[-1]
    assert "64.0 img/s" in last and "ETA 00:00:16" in last  # 1072 left at 64/s, not 1/s

"""The progress bar: a rate and ETA measured after the first tick, which holds the warm-up."""

from __future__ import annotations

import io

from tfgender import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_first_tick_says_warming_up_and_later_ticks_a_sane_rate(monkeypatch):
    clock = iter([0.0, 100.0, 100.0, 101.0, 101.0, 102.0, 102.0, 102.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    stream = _Terminal()
    bar = progress.Progress(1200, desc="epoch 1/8", stream=stream, interval=0.0)
    bar.update(64)  # the first step call: 100 s of tracing
    assert "warming up" in stream.getvalue() and "ETA" not in stream.getvalue()
    bar.update(64)  # one second later
    last = stream.getvalue().split("\r")[-1]
    assert "64.0 img/s" in last and "ETA 00:00:16" in last  # 1072 left at 64/s, not 1/s


def test_a_log_that_is_no_terminal_gets_a_plain_line_every_interval(monkeypatch):
    # 20 updates a second for 100 s: a nohup log gets three lines, not 2,000 redraws.
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    stream = io.StringIO()
    bar = progress.Progress(2000, desc="epoch 1/2", stream=stream, interval=0.25)
    for _ in range(2000):
        now[0] += 0.05
        bar.update(1)
    bar.close()
    lines = stream.getvalue().split("\n")
    assert "\r" not in stream.getvalue() and lines[-1] == ""
    assert len(lines) - 1 == 1 + int(100 // progress.PLAIN_INTERVAL)  # each 30 s, and the end
    assert lines[-2].startswith("epoch 1/2 [") and "2000/2000" in lines[-2]

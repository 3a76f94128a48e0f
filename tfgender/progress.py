"""A dependency-free progress bar with throughput and ETA, written to stderr.

On a terminal the bar is redrawn in place; anywhere else (a ``nohup`` log, a pipe) it is one
plain line every ``PLAIN_INTERVAL`` seconds and a final line, as Keras' ``Progbar`` writes
with ``verbose=2``, so that a log holds lines a person can read.
"""

from __future__ import annotations

import sys
import time

PLAIN_INTERVAL = 30.0  # seconds between the lines written where the stream is no terminal


class Progress:
    """Counts work done and redraws one status line at most every ``interval`` seconds.

    Args:
        total: units expected (0 or None when unknown: no bar or ETA is drawn).
        desc: a short label printed before the bar.
        unit: what is counted, e.g. ``"img"``.
        enabled: False makes every method a no-op (tests, non-interactive logs).
        stream: where to draw; stderr by default so stdout stays machine-readable.
        interval: seconds between redraws on a terminal (``PLAIN_INTERVAL`` elsewhere).
    """

    def __init__(self, total: int | None, desc: str = "", unit: str = "img",
                 enabled: bool = True, stream=None, interval: float = 0.25):
        self.total = total or 0
        self.desc = desc
        self.unit = unit
        self.enabled = enabled
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self.interval = interval if self.live else max(interval, PLAIN_INTERVAL)
        self.count = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._first = None  # (time, count) at the first update: the rate is measured after it

    @property
    def rate(self) -> float:
        """Units per second since the first update (which holds the warm-up: tracing, the
        first batches), or 0.0 before a second one."""
        if self._first is None:
            return 0.0
        start, done = self._first
        elapsed = time.perf_counter() - start
        return (self.count - done) / elapsed if elapsed > 0 and self.count > done else 0.0

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.perf_counter()
        if self._first is None:
            self._first = (now, self.count)
        if self._last_draw == 0.0 and not self.live:
            self._last_draw = now  # the first plain line after one interval, not at once
        if self.enabled and now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw(end="" if self.live else "\n")

    def _draw(self, end: str = "") -> None:
        rate = self.rate
        if self.total:
            frac = min(1.0, self.count / self.total)
            bar = "#" * int(frac * 30)
            eta = (self.total - self.count) / rate if rate > 0 else float("inf")
            eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta < 1e7 else "--:--:--"
            speed = f"{rate:,.1f} {self.unit}/s ETA {eta_text}" if rate else "warming up"
            line = f"{self.desc} [{bar:<30}] {self.count}/{self.total} {speed}"
        else:
            speed = f"{rate:,.1f} {self.unit}/s" if rate else "warming up"
            line = f"{self.desc} {self.count} {self.unit} {speed}"
        self.stream.write(("\r" if self.live else "") + line + end)
        self.stream.flush()

    def close(self) -> None:
        """Draws the final state and ends the line."""
        if self.enabled:
            self._draw(end="\n")

"""SIGINT and SIGTERM during training: save the current step, then stop with one line.

A handler only records the signal; the loop checks it between step calls (a signal that
arrives inside a TensorFlow call is handled when the call returns), saves a checkpoint at that
step and raises ``Interrupted``. A rerun of the same command resumes from it, as Keras
``BackupAndRestore`` does. Several workers are left to TensorFlow's own
``PreemptionCheckpointHandler``: their checkpoint is a collective that one worker cannot
start alone.
"""

from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(RuntimeError):
    """Training stopped on a signal after saving a checkpoint; ``exit_code`` is 128 + signal."""

    def __init__(self, signum: int, step: int, checkpoint_dir: str):
        self.signum, self.step, self.checkpoint_dir = signum, step, checkpoint_dir
        self.exit_code = 128 + signum
        super().__init__(f"interrupted ({signal.Signals(signum).name}) at step {step}; "
                         f"checkpoint saved to {checkpoint_dir}; rerun the same command to "
                         "resume")


@contextlib.contextmanager
def stop_signals(enabled: bool = True):
    """Records the first SIGINT/SIGTERM in ``state["signum"]`` while the block runs.

    Yields:
        ``{"signum": None | int}``; the previous handlers come back afterwards.
    """
    state = {"signum": None}
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield state
        return

    def record(signum, frame):
        del frame
        if state["signum"] is None:
            state["signum"] = signum

    previous = {s: signal.signal(s, record) for s in SIGNALS}
    try:
        yield state
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

"""The start of a conversion worker process, in a module that imports no TensorFlow.

A spawned worker imports its initializer's module before it runs it; were that
``convert`` (which imports TensorFlow), TensorFlow's start-up notices would reach the console
before ``quiet`` could filter them, once per worker.
"""

from __future__ import annotations

from tfgender import quiet


def init(progress_queue) -> None:
    """``ProcessPoolExecutor``'s initializer: TensorFlow quietly, then ``convert``'s own."""
    quiet.import_quietly()
    from tfgender.data import convert  # (after the quiet import, on purpose)

    convert._init_worker(progress_queue)  # (its module's state, set in this process)


def init_quiet() -> None:
    """An initializer for workers that only need TensorFlow imported quietly (drawing)."""
    quiet.import_quietly()

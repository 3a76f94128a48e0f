"""A conversion worker process: its start and its state, in a module that imports no
TensorFlow at import time.

A spawned worker imports its initializer's module before it runs it; were that
``convert`` (which imports TensorFlow), TensorFlow's start-up notices would reach the console
before ``quiet`` could filter them, once per worker.
"""

from __future__ import annotations

from tfgender import quiet

# The parent's progress queue, in a worker process (``init``); None elsewhere.
_progress_queue = None


def init(progress_queue) -> None:
    """``ProcessPoolExecutor``'s initializer: TensorFlow quietly, one thread, the queue."""
    global _progress_queue
    quiet.import_quietly()
    import tensorflow as tf  # (after the quiet import, on purpose)

    # One thread per worker process: the processes are the parallelism.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    _progress_queue = progress_queue


def tick(count: int) -> None:
    """Tells the parent ``count`` more images are done (nothing outside a worker)."""
    if _progress_queue is not None:
        _progress_queue.put(count)


def init_quiet() -> None:
    """An initializer for workers that only need TensorFlow imported quietly (drawing)."""
    quiet.import_quietly()

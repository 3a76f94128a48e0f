"""A run directory's file names, and atomic file output: a file that exists is complete,
whatever moment a run was killed at."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

import numpy as np

# What bin/train writes into its --workdir, and bin/evaluate, predict and export read.
CHECKPOINT_DIR = "checkpoints"
SUMMARY_FILE = "summary.json"
# Written when a run starts (the summary only when it ends): what rebuilds the model of a run
# interrupted in its first epoch from its latest checkpoint.
RUN_CONFIG_FILE = "run_config.json"
HISTORY_FILE = "history.json"
BEST_MODEL = "best_model.keras"


def write_json_atomic(path: str, payload) -> None:
    """Writes ``payload`` as indented, key-sorted JSON to ``path`` via a synced temporary file.

    Readers (resumed runs, ``bin/cross_validate``, the conversion's manifest check) treat an
    existing file as finished work, so it must never be seen half-written.

    Args:
        path: the destination file.
        payload: JSON data; NumPy numbers and arrays and paths are written as the numbers,
            lists and strings they hold.

    Raises:
        TypeError: a value JSON cannot hold (it is not written as its ``str``, which would
            turn a number into a string without a word).
    """
    text = json.dumps(payload, indent=2, sort_keys=True, default=_json_value) + "\n"
    write_bytes_atomic(path, text.encode())


def _json_value(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} {value!r} cannot be written as JSON")


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a synced temporary file of its own in the same folder
    (two writers of one path never share one), renamed over ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(handle, 0o666 & ~umask)  # mkstemp's 0600 would hide the file from other users
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

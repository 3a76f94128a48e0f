"""A run directory's file names, and atomic file output: a file that exists is complete,
whatever moment a run was killed at."""

from __future__ import annotations

import json
import os

# What bin/train writes into its --workdir, and bin/evaluate, predict and export read.
CHECKPOINT_DIR = "checkpoints"
SUMMARY_FILE = "summary.json"
HISTORY_FILE = "history.json"
BEST_MODEL = "best_model.keras"


def write_json_atomic(path: str, payload) -> None:
    """Writes ``payload`` as indented, key-sorted JSON to ``path`` via a synced temporary file.

    Readers (resumed runs, ``bin/cross_validate``, the conversion's manifest check) treat an
    existing file as finished work, so it must never be seen half-written.

    Args:
        path: the destination file.
        payload: JSON-serializable data; other values are written as ``str(value)``.
    """
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a synced temporary file, as ``write_json_atomic``."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

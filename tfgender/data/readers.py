"""The common result of every dataset reader, and ``read_source`` which picks one by name."""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path

import pandas as pd

from tfgender.choices import SOURCES
from tfgender.data.schema import DataFormatError

# Source name (choices.SOURCES, which the flags check) -> (module, function). Imported lazily
# in ``read_source`` because the reader modules import ``ReadResult`` from here: a
# module-level import would be circular.
_READERS = {
    "adience": ("tfgender.data.adience", "read_adience"),
    "celeba": ("tfgender.data.celeba", "read_celeba"),
    "utkface": ("tfgender.data.utkface", "read_utkface"),
    "fairface": ("tfgender.data.fairface", "read_fairface"),
    "folders": ("tfgender.data.folders", "read_folders"),
    "table": ("tfgender.data.table", "read_table"),
}


@dataclasses.dataclass(frozen=True)
class ReadResult:
    """What a reader found in a dataset directory.

    Attributes:
        frame: the readable rows, built by ``schema.make_frame``; ``path`` is relative to the
            data directory, as a POSIX string.
        skipped: rows or files that name an image but could not be read, each
            ``{"path": ..., "reason": ...}`` (e.g. a malformed UTKFace file name).
        dropped: rows the protocol excludes, counted by reason (e.g. Adience ``"gender u"``).
        rows_read: ``len(frame) + len(skipped)``.
    """

    frame: pd.DataFrame
    skipped: list[dict] = dataclasses.field(default_factory=list)
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    rows_read: int = 0


def read_source(source: str, data_dir: str | os.PathLike, **options) -> ReadResult:
    """Reads a dataset directory with the reader of ``source``.

    Args:
        source: one of ``SOURCES``.
        data_dir: root of the dataset (label files and images).
        **options: keyword options of that reader (``read_adience``, ``read_celeba``,
            ``read_utkface``; FairFace and class folders take none).

    Returns:
        The reader's ``ReadResult``.

    Raises:
        ValueError: ``source`` is not a known source.
        DataFormatError: a label file is missing or malformed.
    """
    if source not in _READERS:
        raise ValueError(f"unknown dataset source {source!r}; expected one of {SOURCES}")
    module_name, function_name = _READERS[source]
    reader = getattr(importlib.import_module(module_name), function_name)
    return reader(data_dir, **options)


def read_text_lines(path: Path) -> list[str]:
    """Returns the lines of a UTF-8 label file without line endings.

    Raises:
        DataFormatError: the file is missing, unreadable or not UTF-8.
    """
    try:
        # newline=None maps \r\n to \n, so files edited on Windows read the same.
        with open(path, encoding="utf-8-sig", newline=None) as handle:
            return handle.read().split("\n")
    except FileNotFoundError as error:
        raise DataFormatError(f"{path}: file not found") from error
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text ({error.reason})") from error
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read ({error.strerror})") from error


def format_error(path: str | os.PathLike, line: int, message: str) -> DataFormatError:
    """Returns a ``DataFormatError`` whose message names ``path`` and its 1-based ``line``."""
    return DataFormatError(f"{path}, line {line}: {message}")

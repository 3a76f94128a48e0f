"""Class-folder reader: male/ and female/ sub-folders, as Keras image_dataset_from_directory.

The label of an image is the name of the top-level folder it sits below (any depth):
``male``, ``men`` or ``m`` -> 1; ``female``, ``women`` or ``f`` -> 0, in any case. Images have
no identities here, so ``group`` is the relative path and conversion splits by a seeded hash
of it (``--test_fraction=1.0 --val_fraction=0`` puts a whole tree into ``test``).
"""

from __future__ import annotations

import os
from pathlib import Path

from tfgender.data import image_files, schema
from tfgender.data.readers import ReadResult

CLASS_NAMES = {"male": schema.MALE, "men": schema.MALE, "m": schema.MALE,
               "female": schema.FEMALE, "women": schema.FEMALE, "f": schema.FEMALE}


def read_folders(data_dir: str | os.PathLike) -> ReadResult:
    """Reads a tree of class folders, one row per image below ``male``/``female`` folders.

    Images are files with one of ``image_files.SUFFIXES`` (JPEG, PNG, BMP, GIF, WebP, TIFF;
    conversion reports one it cannot read); files at the top level and other files (README,
    ``.DS_Store``) are ignored.

    Args:
        data_dir: the folder whose sub-folders are the classes.

    Returns:
        A ``ReadResult`` with ``age`` ``""`` and ``split`` ``""``.

    Raises:
        DataFormatError: ``data_dir`` is not a directory, has no class folder, or has a
            sub-folder that names no class (the message lists the folders found and the
            names accepted), or two folders name one class (``male`` and ``Men``).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise schema.DataFormatError(f"{data_dir}: not a directory")
    folders = sorted(p.name for p in data_dir.iterdir()
                     if p.is_dir() and not p.name.startswith("."))
    accepted = "male/men/m or female/women/f (any case)"
    unknown = [name for name in folders if name.lower() not in CLASS_NAMES]
    if unknown or not folders:
        raise schema.DataFormatError(
            f"{data_dir}: class folders must be {accepted}; found "
            f"{folders if folders else 'no sub-folders'}"
            + (f" ({', '.join(unknown)} names no class)" if unknown else ""))
    by_label: dict[int, str] = {}
    for name in folders:
        label = CLASS_NAMES[name.lower()]
        if label in by_label:
            raise schema.DataFormatError(
                f"{data_dir}: folders {by_label[label]!r} and {name!r} name the same class")
        by_label[label] = name
    rows, skipped = [], []
    for name in folders:
        for relative in _files(data_dir, name):
            if relative.lower().endswith(image_files.SUFFIXES):  # every common format
                rows.append({"path": relative, "label": CLASS_NAMES[name.lower()],
                             "group": relative, "fold": -1, "split": "", "age": "",
                             "source": "folders"})
    frame = schema.make_frame(rows)
    return ReadResult(frame=frame, skipped=skipped, dropped={},
                      rows_read=len(frame) + len(skipped))


def _files(data_dir: Path, folder: str) -> list[str]:
    """Relative POSIX paths of all files below ``data_dir/folder``, sorted."""
    found = []
    # os.walk does not follow directory symlinks, so a link loop cannot recurse forever.
    for root, dirs, files in os.walk(data_dir / folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(root).relative_to(data_dir)
        found.extend((base / name).as_posix() for name in files if not name.startswith("."))
    return sorted(found)

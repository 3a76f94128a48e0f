"""Adience reader: the five subject-exclusive ``fold_N_data.txt`` files -> the common DataFrame."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable
from pathlib import Path

from tfgender.data import schema
from tfgender.data.readers import ReadResult, format_error, read_text_lines

FOLD_COLUMNS = ("user_id", "original_image", "face_id", "age", "gender", "x", "y", "dx", "dy",
                "tilt_ang", "fiducial_yaw_angle", "fiducial_score")
NUM_FOLDS = 5
GENDER_LABELS = {"m": schema.MALE, "f": schema.FEMALE}
# Image set -> (top folder, file-name prefix) as laid out in the Adience release.
IMAGE_SETS = {
    "aligned": ("aligned", "landmark_aligned_face"),
    "faces": ("faces", "coarse_tilt_aligned_face"),
}
EXTRA_COLUMNS = ("face_id", "original_image")


def fold_file_name(fold: int, frontal: bool = False) -> str:
    """Returns ``fold_N_data.txt`` or, for the frontal subset, ``fold_frontal_N_data.txt``."""
    return f"fold_frontal_{fold}_data.txt" if frontal else f"fold_{fold}_data.txt"


def image_path(user_id: str, face_id: int, original_image: str, image_set: str = "aligned") -> str:
    """Returns the image path of one fold row, relative to the Adience data directory.

    Args:
        user_id: the Flickr album (``30601258@N03``).
        face_id: the face number within the album.
        original_image: the Flickr file name (``10399646885_67c7d20df9_o.jpg``).
        image_set: ``"aligned"`` (``landmark_aligned_face``) or ``"faces"``
            (``coarse_tilt_aligned_face``).

    Returns:
        E.g. ``aligned/30601258@N03/landmark_aligned_face.1.10399646885_67c7d20df9_o.jpg``.

    Raises:
        ValueError: ``image_set`` is unknown.
    """
    if image_set not in IMAGE_SETS:
        raise ValueError(f"unknown Adience image set {image_set!r}; expected {tuple(IMAGE_SETS)}")
    folder, prefix = IMAGE_SETS[image_set]
    return f"{folder}/{user_id}/{prefix}.{face_id}.{original_image}"


def read_fold_file(path: str | os.PathLike) -> list[dict]:
    """Parses one Adience fold file into raw rows, keeping every gender value.

    Fields are split on tabs only (ages such as ``(25, 32)`` contain a space) and stripped of
    surrounding whitespace; empty fields after the twelfth are tolerated (some copies of the
    files carry trailing tabs) and blank lines are skipped.

    Args:
        path: a ``fold_N_data.txt`` or ``fold_frontal_N_data.txt`` file.

    Returns:
        One dict per data row, with every key of ``FOLD_COLUMNS`` as a string except
        ``face_id`` (an int), plus ``line``, the row's 1-based line number. ``gender`` is as
        written: ``"m"``, ``"f"``, ``"u"`` or ``""``.

    Raises:
        DataFormatError: the file is missing, lacks the header, or a row has the wrong number
            of columns, an empty ``user_id``/``original_image``, a non-integer ``face_id`` or
            an ``original_image`` containing a path separator. The message names the file and
            the line.
    """
    path = Path(path)
    lines = read_text_lines(path)
    header = _split(lines[0]) if lines else []
    if header != list(FOLD_COLUMNS):
        raise format_error(path, 1, f"expected the header {' '.join(FOLD_COLUMNS)!r}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = _split(line)
        if len(fields) != len(FOLD_COLUMNS):
            raise format_error(
                path, number, f"expected {len(FOLD_COLUMNS)} tab-separated columns, "
                f"found {len(fields)}")
        row = dict(zip(FOLD_COLUMNS, fields, strict=True))
        for key in ("user_id", "original_image"):
            if not row[key]:
                raise format_error(path, number, f"{key} is empty")
        # A user_id or image name with separators (``..``) is kept: conversion resolves every
        # path and reports one that leaves the data directory as a skipped image, naming it,
        # rather than failing the whole fold file.
        try:
            row["face_id"] = int(row["face_id"])
        except ValueError:
            raise format_error(
                path, number, f"face_id {row['face_id']!r} is not an integer") from None
        row["line"] = number
        rows.append(row)
    return rows


def read_adience(data_dir: str | os.PathLike, *, folds: Iterable[int] | None = None,
                 frontal: bool = False, image_set: str = "aligned",
                 folds_dir: str | os.PathLike | None = None) -> ReadResult:
    """Reads the Adience fold files into the common DataFrame, one row per m/f face.

    Rows with gender ``u`` or empty are left out, as in the gender benchmark, and counted in
    ``dropped`` (``"gender u"``, ``"gender empty"``). ``group`` is the ``user_id`` (album),
    ``fold`` the file's fold number, ``split`` is ``""`` (folds replace splits) and ``age`` is
    kept as written. ``face_id`` and ``original_image`` are kept as extra columns. Rows are
    kept as listed, repeats included: the real files list 111 m/f faces twice (same album,
    image and ``face_id``, hence the same image path, always with the same gender), and the
    benchmark's counts include them.

    Args:
        data_dir: the Adience root holding ``aligned/`` or ``faces/``; paths are relative to it.
        folds: fold numbers to read (default all five, 0-4).
        frontal: read ``fold_frontal_N_data.txt`` (the frontal subset) instead.
        image_set: ``"aligned"`` or ``"faces"``: which image tree the paths point into.
        folds_dir: where the fold files are (default ``data_dir``).

    Returns:
        A ``ReadResult``; ``skipped`` is always empty (a bad row is an error, not a skip).

    Raises:
        ValueError: a fold number outside 0-4 or an unknown ``image_set``.
        DataFormatError: a fold file is missing or malformed, a gender is not m/f/u/empty,
            or one ``user_id`` appears in two folds (the folds would no longer be
            subject-exclusive).
    """
    if image_set not in IMAGE_SETS:
        raise ValueError(f"unknown Adience image set {image_set!r}; expected {tuple(IMAGE_SETS)}")
    folds = list(range(NUM_FOLDS)) if folds is None else sorted(set(folds))
    bad_folds = [f for f in folds if f not in range(NUM_FOLDS)]
    if bad_folds:
        raise ValueError(f"Adience folds are 0-{NUM_FOLDS - 1}, got {bad_folds}")
    folds_dir = Path(data_dir if folds_dir is None else folds_dir)

    rows, dropped = [], collections.Counter()
    user_folds: dict[str, int] = {}
    for fold in folds:
        path = folds_dir / fold_file_name(fold, frontal)
        for raw in read_fold_file(path):
            user = raw["user_id"]
            if user_folds.setdefault(user, fold) != fold:
                raise format_error(
                    path, raw["line"], f"user_id {user!r} is also in fold {user_folds[user]}; "
                    "Adience folds must be subject-exclusive")
            gender = raw["gender"]
            if gender not in GENDER_LABELS:
                if gender not in ("u", ""):
                    raise format_error(
                        path, raw["line"], f"gender {gender!r} is not m, f, u or empty")
                dropped[f"gender {gender or 'empty'}"] += 1
                continue
            rows.append({
                "path": image_path(user, raw["face_id"], raw["original_image"], image_set),
                "label": GENDER_LABELS[gender],
                "group": user,
                "fold": fold,
                "split": "",
                "age": raw["age"],
                "source": "adience",
                "face_id": raw["face_id"],
                "original_image": raw["original_image"],
            })
    frame = schema.make_frame(rows, EXTRA_COLUMNS).astype({"face_id": "int64"})
    return ReadResult(frame=frame, skipped=[], dropped=dict(dropped), rows_read=len(frame))


def _split(line: str) -> list[str]:
    fields = [field.strip() for field in line.split("\t")]
    # Trailing tabs after the last column are an artefact of some copies, not extra data.
    while len(fields) > len(FOLD_COLUMNS) and not fields[-1]:
        fields.pop()
    return fields


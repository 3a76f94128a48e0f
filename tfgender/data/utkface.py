"""UTKFace reader: labels from ``<age>_<gender>_<race>_<datetime>.jpg.chip.jpg`` file names."""

from __future__ import annotations

import os
from pathlib import Path

from tfgender.data import schema
from tfgender.data.readers import ReadResult

# Longest first: the released crops end ``.jpg.chip.jpg``, other releases plain ``.jpg``.
SUFFIXES = (".jpg.chip.jpg", ".jpg")
# Other image files: reported as skipped (an image we cannot label), not silently ignored.
OTHER_IMAGE_SUFFIXES = (".jpeg", ".png", ".bmp", ".gif", ".webp")
# UTKFace gender 0 = male, 1 = female; tfgender's labels are male 1, female 0.
GENDER_LABELS = {0: schema.MALE, 1: schema.FEMALE}
RACES = {0: "white", 1: "black", 2: "asian", 3: "indian", 4: "other"}
EXTRA_COLUMNS = ("race",)


def parse_name(name: str) -> dict:
    """Parses one UTKFace file name.

    Args:
        name: a file name such as ``21_0_4_20161223214830361.jpg.chip.jpg``.

    Returns:
        ``{"image_id", "age", "label", "race"}``: the name without its suffix, the age as
        written, the tfgender label (1 male, 0 female) and the race code 0-4.

    Raises:
        ValueError: the name does not follow ``<age>_<gender>_<race>_<datetime>.jpg``; the
            message says which part is wrong.
    """
    suffix = next((s for s in SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        raise ValueError("not a .jpg file")
    image_id = name[:-len(suffix)]
    fields = image_id.split("_")
    if len(fields) != 4:
        raise ValueError(f"expected <age>_<gender>_<race>_<datetime>, found {len(fields)} fields")
    age, gender, race, datetime = fields
    # isdecimal, not int(): int() would accept " 3", "+3" and "3_0" style spellings.
    for field, value in (("age", age), ("gender", gender), ("race", race),
                         ("datetime", datetime)):
        if not (value.isascii() and value.isdecimal()):
            raise ValueError(f"{field} {value!r} is not a non-negative integer")
    if int(gender) not in GENDER_LABELS:
        raise ValueError(f"gender {gender} is not 0 (male) or 1 (female)")
    if int(race) not in RACES:
        raise ValueError(f"race {race} is not 0-4")
    return {"image_id": image_id, "age": age, "label": GENDER_LABELS[int(gender)],
            "race": int(race)}


def read_utkface(data_dir: str | os.PathLike) -> ReadResult:
    """Reads a UTKFace tree, labelling every image from its file name.

    Every file under ``data_dir`` (recursively, in sorted order of its relative path, so the
    result does not depend on the file system) is considered:

    - a name ending ``.jpg`` (any case, including ``.jpg.chip.jpg``) that follows
      ``<age>_<gender>_<race>_<datetime>`` becomes a row;
    - a ``.jpg`` whose name does not follow it (missing field, non-integer, gender not 0/1,
      race not 0-4), and any other image file (``.png``, ``.jpeg``, ...), is reported in
      ``skipped`` with the reason: it is an image we cannot label, which a user should see;
    - anything else (README, licence, ``.DS_Store``) is ignored silently.

    ``group`` is the image id (the name without its suffix: UTKFace records no identities),
    ``fold`` -1, ``split`` ``""``, ``age`` as written, and the race code is an extra int
    column ``race``.

    Args:
        data_dir: the UTKFace root (e.g. ``UTKFace/`` or a tree of sub-folders).

    Returns:
        A ``ReadResult``; ``dropped`` is empty.

    Raises:
        DataFormatError: ``data_dir`` is not a directory.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise schema.DataFormatError(f"{data_dir}: not a directory")
    rows, skipped = [], []
    for relative in _files(data_dir):
        name = relative.rsplit("/", 1)[-1]
        lower = name.lower()
        if not lower.endswith(".jpg"):
            if lower.endswith(OTHER_IMAGE_SUFFIXES):
                skipped.append({"path": relative, "reason": "not a .jpg image"})
            continue
        try:
            parsed = parse_name(name)
        except ValueError as error:
            skipped.append({"path": relative, "reason": f"malformed UTKFace name: {error}"})
            continue
        rows.append({"path": relative, "label": parsed["label"], "group": parsed["image_id"],
                     "fold": -1, "split": "", "age": parsed["age"], "source": "utkface",
                     "race": parsed["race"]})
    frame = schema.make_frame(rows, EXTRA_COLUMNS).astype({"race": "int64"})
    return ReadResult(frame=frame, skipped=skipped, dropped={},
                      rows_read=len(frame) + len(skipped))


def _files(data_dir: Path) -> list[str]:
    """Relative POSIX paths of all files under ``data_dir``, sorted."""
    found = []
    # os.walk does not follow directory symlinks, so a link loop cannot recurse forever.
    for root, _, files in os.walk(data_dir):
        base = Path(root).relative_to(data_dir)
        found.extend((base / name).as_posix() for name in files)
    return sorted(found)

"""FairFace reader: ``fairface_label_train.csv`` and/or ``fairface_label_val.csv`` -> the DataFrame.

FairFace (Kärkkäinen & Joo, WACV 2021) ships two CSVs with the columns
``file,age,gender,race,service_test``; ``file`` (``train/1.jpg``) is relative to the folder
holding the CSVs. Rows of the val CSV are FairFace's standard test set and get split
``test``; rows of the train CSV get ``split`` ``""`` so conversion splits them into
train/val/test by ``--val_fraction``/``--test_fraction`` (``splits.assign_folds_or_split``).
FairFace records no identities, so ``group`` is the image path.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from tfgender.data import schema
from tfgender.data.readers import ReadResult, format_error, read_text_lines

LABEL_FILES = {"fairface_label_train.csv": "", "fairface_label_val.csv": "test"}
REQUIRED_COLUMNS = ("file", "age", "gender", "race")
GENDERS = {"Male": schema.MALE, "Female": schema.FEMALE}
# FairFace's age bands, youngest first (also the order of the evaluation slices).
AGE_BANDS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
RACES = ("White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian",
         "Middle Eastern")
EXTRA_COLUMNS = ("race",)


def read_fairface(data_dir: str | os.PathLike) -> ReadResult:
    """Reads FairFace's label CSVs, one row per image.

    Args:
        data_dir: the folder holding ``fairface_label_train.csv`` and/or
            ``fairface_label_val.csv`` (and the ``train/``, ``val/`` image folders).

    Returns:
        A ``ReadResult``: ``age`` is the band as written (``"20-29"``), ``race`` an extra
        string column; ``skipped`` and ``dropped`` are empty (a bad row is an error).

    Raises:
        DataFormatError: neither CSV is there, or a row is malformed (wrong column count, an
            unknown gender, age band or race, an empty or repeated ``file``); the message
            names the file and line.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise schema.DataFormatError(f"{data_dir}: not a directory")
    present = [name for name in LABEL_FILES if (data_dir / name).is_file()]
    if not present:
        raise schema.DataFormatError(
            f"{data_dir}: no FairFace label file (expected {' and/or '.join(LABEL_FILES)})")
    rows, seen = [], {}
    for name in present:
        path = data_dir / name
        for line, record in _records(path):
            where = f"{path}, line {line}"
            if record["file"] in seen:
                raise format_error(path, line, f"file {record['file']!r} is listed again "
                                   f"(first at {seen[record['file']]})")
            seen[record["file"]] = where
            rows.append({"path": record["file"], "label": GENDERS[record["gender"]],
                         "group": record["file"], "fold": -1, "split": LABEL_FILES[name],
                         "age": record["age"], "source": "fairface", "race": record["race"]})
    frame = schema.make_frame(rows, EXTRA_COLUMNS).astype({"race": str})
    return ReadResult(frame=frame, skipped=[], dropped={}, rows_read=len(frame))


def _records(path: Path):
    """Yields ``(line number, {column: value})`` for every data row of one CSV, checked."""
    lines = read_text_lines(path)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise format_error(path, 1, "empty file: expected a header "
                           "file,age,gender,race,service_test") from None
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise format_error(path, 1, f"header lacks columns {missing}; found {header}")
    index = {c: header.index(c) for c in REQUIRED_COLUMNS}
    for number, fields in enumerate(reader, start=2):
        if not fields or fields == [""]:
            continue  # blank lines (a trailing newline) are not rows
        if len(fields) != len(header):
            raise format_error(path, number, f"expected {len(header)} comma-separated fields, "
                               f"found {len(fields)}")
        record = {c: fields[i].strip() for c, i in index.items()}
        if not record["file"]:
            raise format_error(path, number, "empty file column")
        if record["gender"] not in GENDERS:
            raise format_error(path, number, f"gender {record['gender']!r} is not Male or Female")
        if record["age"] not in AGE_BANDS:
            raise format_error(path, number, f"age {record['age']!r} is not one of FairFace's "
                               f"bands {list(AGE_BANDS)}")
        if record["race"] not in RACES:
            raise format_error(path, number, f"race {record['race']!r} is not one of "
                               f"{list(RACES)}")
        yield number, record

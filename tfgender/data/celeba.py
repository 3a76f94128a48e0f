"""CelebA reader: ``list_attr_celeba`` + ``list_eval_partition`` (+ identities) -> the DataFrame.

Both the original whitespace-separated ``.txt`` lists and the widespread ``.csv`` variant are
read; the ``.txt`` file wins when both exist. Parsing is vectorised with pandas; when pandas
cannot parse a file cleanly, a line-by-line pass finds the exact line to report.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from tfgender.data import schema
from tfgender.data.readers import ReadResult, format_error, read_text_lines

ATTRIBUTE_FILES = ("list_attr_celeba.txt", "list_attr_celeba.csv")
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
IDENTITY_FILE = "identity_CelebA.txt"
IMAGE_DIR = "img_align_celeba"
GENDER_ATTRIBUTE = "Male"
ATTRIBUTE_VALUES = (-1, 1)
PARTITIONS = {0: "train", 1: "val", 2: "test"}


def read_celeba(data_dir: str | os.PathLike, *, attributes: Iterable[str] = ()) -> ReadResult:
    """Reads the CelebA label lists into the common DataFrame, one row per image.

    ``label`` is 1 where ``Male`` is 1 and 0 where it is -1. ``split`` comes from the
    partition list (0 train, 1 val, 2 test; ``""`` for an image it does not list, and for all
    images when there is no partition file). ``group`` is the identity from
    ``identity_CelebA.txt`` when that file exists, else the image id (``000001``). ``fold`` is
    -1 and ``age`` is ``""``.

    Args:
        data_dir: the CelebA root holding the lists and ``img_align_celeba/``.
        attributes: attribute names to keep as extra int64 columns, with the file's values
            (-1 or 1).

    Returns:
        A ``ReadResult``; ``skipped`` and ``dropped`` are empty (a bad row is an error).

    Raises:
        DataFormatError: the attribute list is missing or malformed (count line, column
            count, a value not -1/1, a duplicate image, no ``Male`` column, an unknown
            requested attribute), the partition list holds a value other than 0/1/2, or the
            identity list is malformed or misses an image. The message names file and line.
    """
    data_dir = Path(data_dir)
    attributes = tuple(dict.fromkeys(attributes))  # de-duplicated, order kept
    path = _first_existing(data_dir, ATTRIBUTE_FILES)
    names, columns, values, lines = _read_attributes(path)
    header_line = 2 if path.suffix == ".txt" else 1
    if GENDER_ATTRIBUTE not in columns:
        raise format_error(path, header_line, f"no {GENDER_ATTRIBUTE!r} attribute")
    unknown = [a for a in attributes if a not in columns]
    if unknown:
        raise format_error(path, header_line, f"unknown attributes {unknown}; the file has "
                           f"{columns}")

    splits = np.full(len(names), "", dtype=object)
    partition_path = _first_existing(data_dir, PARTITION_FILES, required=False)
    if partition_path is not None:
        part_names, part_values, part_lines = _read_list(partition_path)
        bad = np.flatnonzero(~np.isin(part_values, list(PARTITIONS)))
        if bad.size:
            raise format_error(partition_path, part_lines[bad[0]],
                               f"partition {part_values[bad[0]]} is not 0, 1 or 2")
        found = pd.Index(part_names).get_indexer(names)
        listed = found >= 0
        splits[listed] = [PARTITIONS[v] for v in part_values[found[listed]]]

    image_ids = [name.rsplit(".", 1)[0] for name in names]
    groups = image_ids
    if (data_dir / IDENTITY_FILE).is_file():
        groups = _identities(data_dir / IDENTITY_FILE, names)

    gender = values[:, columns.index(GENDER_ATTRIBUTE)]
    labels = np.where(gender == 1, schema.MALE, schema.FEMALE)
    extras = {a: values[:, columns.index(a)] for a in attributes}
    rows = [
        {"path": f"{IMAGE_DIR}/{name}", "label": label, "group": group, "fold": -1,
         "split": split, "age": "", "source": "celeba"}
        for name, label, group, split in zip(names, labels.tolist(), groups, splits, strict=True)
    ]
    frame = schema.make_frame(rows)
    for attribute, column in extras.items():
        frame[attribute] = column.astype("int64")
    return ReadResult(frame=frame, skipped=[], dropped={}, rows_read=len(frame))


def _read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Returns (image names, attribute names, values (n, attributes), line numbers)."""
    lines = read_text_lines(path)
    if path.suffix == ".txt":
        try:
            count = int(lines[0].strip())
        except ValueError:
            raise format_error(path, 1, f"expected the image count, found {lines[0]!r}") from None
        columns = lines[1].split() if len(lines) > 1 else []
        first = 3
    else:
        count = None
        columns = next(csv.reader([lines[0]]))[1:]
        first = 2
    if not columns:
        raise format_error(path, first - 1, "no attribute names")
    if len(set(columns)) != len(columns):
        raise format_error(path, first - 1, "duplicate attribute names")
    names, values, line_numbers = _read_table(path, lines, first, 1 + len(columns))
    if count is not None and count != len(names):
        raise format_error(path, 1, f"the count says {count} images but {len(names)} rows follow")
    bad_rows, bad_columns = np.nonzero(~np.isin(values, ATTRIBUTE_VALUES))
    if bad_rows.size:
        row, column = bad_rows[0], bad_columns[0]
        raise format_error(path, line_numbers[row], f"{columns[column]} is {values[row, column]}, "
                           "expected -1 or 1")
    return names, columns, values, line_numbers


def _read_list(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Reads a two-column ``image value`` list (partition or identity), txt or csv."""
    lines = read_text_lines(path)
    first = 1 if path.suffix == ".txt" else 2  # the csv variant has a header line
    names, values, line_numbers = _read_table(path, lines, first, 2)
    return names, values[:, 0], line_numbers


def _identities(path: Path, names: list[str]) -> list[str]:
    id_names, identities, _ = _read_list(path)
    found = pd.Index(id_names).get_indexer(names)
    if (found < 0).any():
        missing = names[int(np.flatnonzero(found < 0)[0])]
        raise schema.DataFormatError(f"{path}: no identity for {missing}")
    return [str(i) for i in identities[found].tolist()]


def _read_table(path: Path, lines: list[str], first: int,
                width: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Parses the rows from 1-based line ``first`` on: an image name, then ``width - 1`` ints.

    Returns:
        (image names, int64 values of shape (rows, width - 1), 1-based line number per row).
        Blank lines are skipped.
    """
    line_numbers = np.array([n for n, line in enumerate(lines[first - 1:], start=first)
                             if line.strip()], dtype=np.int64)
    table = _parse_fast(path, first, width, len(line_numbers))
    if table is None:
        table = _parse_slow(path, lines, line_numbers, width)
    names, values = table
    _check_names(path, names, line_numbers)
    return names, values, line_numbers


def _parse_fast(path: Path, first: int, width: int, rows: int):
    """The vectorised parse, or None when pandas disagrees with the line count or types."""
    if rows == 0:
        return [], np.zeros((0, width - 1), dtype=np.int64)
    try:
        frame = pd.read_csv(path, sep=r"\s+" if path.suffix == ".txt" else ",", header=None,
                            skiprows=first - 1, dtype={0: str}, engine="c", encoding="utf-8-sig")
    except (ValueError, pd.errors.ParserError):
        return None
    values = frame.iloc[:, 1:]
    if frame.shape != (rows, width) or not all(
            pd.api.types.is_integer_dtype(t) for t in values.dtypes):
        return None
    return frame[0].tolist(), values.to_numpy(dtype=np.int64)


def _parse_slow(path: Path, lines: list[str], line_numbers: np.ndarray, width: int):
    """Parses line by line; raises at the first malformed line (the fast path's fallback)."""
    names, values = [], []
    for number in line_numbers.tolist():
        line = lines[number - 1]
        fields = line.split() if path.suffix == ".txt" else next(csv.reader([line]))
        if len(fields) != width:
            raise format_error(path, number, f"expected {width} values, found {len(fields)}")
        try:
            values.append([int(field) for field in fields[1:]])
        except ValueError:
            raise format_error(path, number, f"non-integer value in {line.strip()!r}") from None
        names.append(fields[0].strip())
    return names, np.array(values, dtype=np.int64).reshape(len(names), width - 1)


def _check_names(path: Path, names: list[str], line_numbers: np.ndarray) -> None:
    # A separator would let the image path leave img_align_celeba/.
    unsafe = next((row for row, name in enumerate(names)
                   if "/" in name or "\\" in name or name in ("", ".", "..")), None)
    if unsafe is not None:
        raise format_error(path, line_numbers[unsafe],
                           f"image {names[unsafe]!r} is not a file name")
    duplicated = np.flatnonzero(pd.Index(names).duplicated())
    if duplicated.size:
        row = int(duplicated[0])
        raise format_error(path, line_numbers[row], f"image {names[row]!r} is listed twice")


def _first_existing(data_dir: Path, candidates: tuple[str, ...],
                    required: bool = True) -> Path | None:
    for name in candidates:
        if (data_dir / name).is_file():
            return data_dir / name
    if required:
        raise schema.DataFormatError(f"{data_dir}: none of {candidates} found")
    return None

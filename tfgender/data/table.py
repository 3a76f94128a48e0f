"""Table reader: any CSV, TSV or parquet file of image paths and labels (the study's
``ImageDataGenerator.flow_from_dataframe``), or a pandas DataFrame -> the DataFrame schema.

A user's own faces usually come as a table: one row per image, a column of paths and a column
of labels, perhaps a subject column and other facts (age, race, ...). This reader takes it as
it is:

- Paths are relative to the table's folder (``--data_dir`` overrides it), or absolute.
- The path and label columns default to ``flow_from_dataframe``'s ``filename`` and ``class``,
  else the first of ``path``/``file``/``image``/... and ``gender``/``label``/``sex``/... found.
- Labels map through ``label_map`` (``male:1,female:0``), by default the usual spellings in
  any case: ``male``/``female``, ``m``/``f``, ``man``/``woman``, ``men``/``women``, ``1``/``0``
  (and ``1.0``/``0.0``, as pandas writes an integer column with a gap). ``1`` is male, the
  study's convention; a table coded the other way (UTKFace's file names: 0 = male) needs
  ``--label_map=0:1,1:0``.
- An unknown label is an error naming the file, the line and the value, unless
  ``skip_unknown_labels``: then its rows are counted in ``dropped`` (as Adience's ``u`` rows).
- ``split_column`` (``train``/``val``/``test``) keeps a given split; ``group_column`` keeps one
  subject's images on one side of a split or fold; else conversion splits by image.
- Columns named by ``--slice_columns`` are kept for ``bin/evaluate``'s slices: ``age`` and
  ``race`` in the records' own fields, any other in a JSON text (``records.EXTRA``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from tfgender.data import schema
from tfgender.data.readers import ReadResult

PATH_COLUMNS = ("filename", "path", "file", "filepath", "file_path", "image", "image_path",
                "img", "name")
LABEL_COLUMNS = ("class", "gender", "label", "sex", "male", "is_male")
DEFAULT_LABELS = {"male": schema.MALE, "m": schema.MALE, "man": schema.MALE,
                  "men": schema.MALE, "1": schema.MALE, "1.0": schema.MALE,
                  "true": schema.MALE,
                  "female": schema.FEMALE, "f": schema.FEMALE, "woman": schema.FEMALE,
                  "women": schema.FEMALE, "0": schema.FEMALE, "0.0": schema.FEMALE,
                  "false": schema.FEMALE}
# Columns the records hold in fields of their own (records.make_example: age, race); other
# slice columns go into its ``extra`` JSON text.
SLICE_COLUMNS = ("age", "race")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None, ".parquet": "parquet",
                  ".pq": "parquet"}


def parse_label_map(text: str) -> dict[str, int]:
    """``"male:1,female:0"`` -> ``{"male": 1, "female": 0}`` (keys lower-cased).

    Raises:
        ValueError: an entry is not ``value:0`` or ``value:1``.
    """
    mapping = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        value, sep, label = entry.rpartition(":")
        if not sep or not value.strip() or label.strip() not in ("0", "1"):
            raise ValueError(f"--label_map entry {entry!r}: expected VALUE:1 (male) or "
                             "VALUE:0 (female), e.g. male:1,female:0")
        mapping[value.strip().lower()] = int(label)
    return mapping


def load_table(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a CSV, TSV or parquet file as strings (every value as written).

    Raises:
        DataFormatError: missing, unreadable, an unknown suffix or not a table.
    """
    path = Path(path)
    if not path.is_file():
        raise schema.DataFormatError(f"{path}: table file not found")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise schema.DataFormatError(f"{path}: expected a .csv, .tsv or .parquet table, not "
                                     f"{suffix or 'a file without a suffix'}")
    try:
        if TABLE_SUFFIXES[suffix] == "parquet":
            frame = pd.read_parquet(path)
            return frame.astype(str).where(frame.notna(), "")
        # sep=None sniffs commas or tabs (.txt); keep_default_na: an empty cell stays "".
        return pd.read_csv(path, sep=TABLE_SUFFIXES[suffix], dtype=str, keep_default_na=False,
                           engine="python" if TABLE_SUFFIXES[suffix] is None else "c",
                           encoding="utf-8-sig")
    except ImportError as err:
        raise schema.DataFormatError(f"{path}: reading parquet needs pyarrow: {err}") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise schema.DataFormatError(f"{path}: not a readable table: {reason}") from None


def read_table(data_dir: str | os.PathLike, *, labels: str = "", path_column: str = "",
               label_column: str = "", label_map: str = "", skip_unknown_labels: bool = False,
               split_column: str = "", group_column: str = "",
               slice_columns: tuple[str, ...] = ()) -> ReadResult:
    """Reads a table of image paths and labels (see the module docstring).

    Args:
        data_dir: where relative paths start; empty: the table's folder.
        labels: the table file (.csv, .tsv, .txt of either, .parquet).
        path_column, label_column: column names; empty: found by the usual names.
        label_map: ``value:1,value:0`` entries; empty: ``DEFAULT_LABELS``.
        skip_unknown_labels: drop (and count) rows whose label is not in the map.
        split_column, group_column: optional columns (see the module docstring).
        slice_columns: columns kept for ``bin/evaluate``'s slices (any; ``age`` and ``race``
            in fields of their own).

    Returns:
        A ``ReadResult``; ``source`` is ``"table"``.

    Raises:
        DataFormatError: a missing file or column, an unknown label (file, line, value), an
            empty path, a path listed twice, an unknown split name.
    """
    if not labels:
        raise schema.DataFormatError("--source=table needs --labels=TABLE (a .csv, .tsv or "
                                     ".parquet file of image paths and labels)")
    frame = load_table(labels)
    parquet = TABLE_SUFFIXES.get(Path(labels).suffix.lower()) == "parquet"
    return read_dataframe(frame, where=str(labels), path_column=path_column,
                          label_column=label_column, label_map=label_map,
                          skip_unknown_labels=skip_unknown_labels, split_column=split_column,
                          group_column=group_column, slice_columns=slice_columns,
                          first_line=0 if parquet else 2)  # a parquet file has rows, no lines


def read_dataframe(frame: pd.DataFrame, *, where: str = "the DataFrame", path_column: str = "",
                   label_column: str = "", label_map: str | dict = "",
                   skip_unknown_labels: bool = False, split_column: str = "",
                   group_column: str = "", slice_columns: tuple[str, ...] = (),
                   first_line: int = 0) -> ReadResult:
    """``read_table`` for a table already in memory; ``where`` names it in errors and
    ``first_line`` is the line (or index) of its first row (2 below a CSV header)."""
    frame = frame.reset_index(drop=True)
    frame.columns = columns = [str(c) for c in frame.columns]
    # A missing value (NaN, None) is an empty cell, as in a CSV: not the text "nan".
    frame = frame.astype(object).where(frame.notna(), "")
    paths = _column(columns, path_column, PATH_COLUMNS, "path", where)
    label_name = _column(columns, label_column, LABEL_COLUMNS, "label", where)
    optional = {"split": split_column, "group": group_column}
    for kind, name in optional.items():
        if name and name not in columns:
            raise schema.DataFormatError(f"{where}: no {kind} column {name!r} (columns: "
                                         f"{', '.join(columns)})")
    missing_slices = [c for c in slice_columns if c not in columns]
    if missing_slices:
        raise schema.DataFormatError(
            f"{where}: --slice_columns={','.join(slice_columns)}: no column "
            f"{', '.join(missing_slices)} (columns: {', '.join(columns)})")
    others = [c for c in slice_columns if c not in SLICE_COLUMNS]
    if isinstance(label_map, dict):
        mapping = {str(k).strip().lower(): int(v) for k, v in label_map.items()}
    else:
        try:
            mapping = parse_label_map(label_map)
        except ValueError as err:
            raise schema.DataFormatError(str(err)) from None
    mapping = mapping or DEFAULT_LABELS
    rows, seen, dropped = [], {}, {}
    for index, record in enumerate(frame.astype(str).to_dict("records")):
        line = first_line + index
        at = f"{where}, line {line}" if first_line else f"{where}, row {index}"
        path = record[paths].strip()
        raw = record[label_name].strip()
        label = mapping.get(raw.lower())
        if label is None:
            if skip_unknown_labels:
                key = f"{label_name} {raw or '(empty)'}"
                dropped[key] = dropped.get(key, 0) + 1
                continue
            known = ", ".join(sorted(mapping))
            raise schema.DataFormatError(
                f"{at}: {label_name} {raw!r} is no known label ({known}); give --label_map "
                "or --skip_unknown_labels")
        if not path:
            raise schema.DataFormatError(f"{at}: empty {paths}")
        if path in seen:
            raise schema.DataFormatError(f"{at}: {paths} {path!r} is listed again (first at "
                                         f"{seen[path]})")
        seen[path] = at
        split = record[split_column].strip().lower() if split_column else ""
        if split and split not in schema.SPLITS:
            raise schema.DataFormatError(f"{at}: {split_column} {split!r} is not one of "
                                         f"{', '.join(schema.SPLITS)}")
        group = record[group_column].strip() if group_column else ""
        row = {"path": Path(path).as_posix(), "label": label, "group": group or path,
               "fold": -1, "split": split, "age": "", "source": "table"}
        for name in SLICE_COLUMNS:
            if name in slice_columns:
                row[name] = record[name].strip()
        if others:  # the rest travel in the records as one JSON text (records.EXTRA)
            row["extra"] = json.dumps({c: record[c].strip() for c in others}, sort_keys=True)
        rows.append(row)
    extra = tuple(c for c in ("race",) if c in slice_columns) + (("extra",) if others else ())
    result = schema.make_frame(rows, extra)
    # rows_read counts the rows kept and skipped (ReadResult), not those the map dropped.
    return ReadResult(frame=result.astype({c: str for c in extra}), skipped=[],
                      dropped=dropped, rows_read=len(rows))


def _column(columns: list[str], given: str, usual: tuple[str, ...], kind: str,
            where: str) -> str:
    if given:
        if given not in columns:
            raise schema.DataFormatError(f"{where}: no {kind} column {given!r} (columns: "
                                         f"{', '.join(columns)})")
        return given
    lower = {c.lower(): c for c in columns}
    found = next((lower[name] for name in usual if name in lower), None)
    if found is None:
        raise schema.DataFormatError(
            f"{where}: no {kind} column: name it with --{kind}_column (looked for "
            f"{', '.join(usual)}; columns: {', '.join(columns)})")
    return found

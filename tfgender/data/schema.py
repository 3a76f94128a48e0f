"""The one DataFrame schema every dataset reader returns.

Columns (in this order, then any per-source extras such as UTKFace ``race`` or CelebA
attributes):

- ``path``: image path *relative to the dataset's data directory*, as the label file gives it
  (conversion resolves it and refuses paths that leave the data directory).
- ``label``: 1 = male, 0 = female (the original study's convention).
- ``group``: identity or album when known (Adience ``user_id``), else the image id; splits
  and folds never put one group on two sides.
- ``fold``: Adience fold 0-4, else -1.
- ``split``: ``train``/``val``/``test``, or ``""`` when the source has none.
- ``age``: as the source gives it, as a string (``"(25, 32)"``, ``"35"``, ``"None"``, ``""``).
- ``source``: the reader's name (``readers.SOURCES``).
"""

from __future__ import annotations

import pandas as pd

COLUMNS = ("path", "label", "group", "fold", "split", "age", "source")
SPLITS = ("train", "val", "test")
MALE, FEMALE = 1, 0


class DataFormatError(ValueError):
    """A label file or image name that cannot be read; the message names the file and line."""


def make_frame(rows: list[dict], extra_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Builds a schema-conforming DataFrame from row dicts.

    Args:
        rows: dicts with at least the keys in ``COLUMNS``.
        extra_columns: per-source columns kept after the schema columns.

    Returns:
        A DataFrame with ``COLUMNS`` + ``extra_columns`` and the schema's dtypes.
    """
    columns = list(COLUMNS) + list(extra_columns)
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype(
        {"path": str, "label": "int64", "group": str, "fold": "int64", "split": str,
         "age": str, "source": str}
    )


def validate_frame(frame: pd.DataFrame) -> None:
    """Raises ``DataFormatError`` when ``frame`` does not follow the schema."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(f"DataFrame lacks schema columns {missing}")
    bad_labels = set(frame["label"].unique()) - {MALE, FEMALE}
    if bad_labels:
        raise DataFormatError(f"labels must be 0 or 1, found {sorted(bad_labels)}")
    bad_splits = set(frame["split"].unique()) - set(SPLITS) - {""}
    if bad_splits:
        raise DataFormatError(f"unknown splits {sorted(bad_splits)}")

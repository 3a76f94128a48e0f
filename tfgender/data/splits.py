"""Deterministic grouped splits and folds: one group (identity, album) never sits on two sides."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

# Adience's benchmark folds, fixed by its fold files.
ADIENCE_FOLDS = 5
# Sources whose own split covers only some rows, the others cut by the fractions: FairFace's
# val CSV is its test set, its train CSV has no split.
PARTLY_SPLIT_SOURCES = ("fairface", "table")


def _group_order(groups: np.ndarray, seed: int) -> np.ndarray:
    """Orders unique groups by a seeded hash, so the order does not depend on row order."""
    keys = [hashlib.sha256(f"{seed}:{g}".encode()).hexdigest() for g in groups]
    return groups[np.argsort(keys, kind="stable")]


def assign_grouped_split(frame: pd.DataFrame, *, val_fraction: float, test_fraction: float,
                         seed: int = 0) -> pd.DataFrame:
    """Returns a copy of ``frame`` whose ``split`` column is train/val/test by group.

    Groups are ordered by a seeded hash and cut at the requested fractions of the *groups*,
    so the split is the same whatever the row order, and a fraction of 1.0 puts everything
    in one split.

    Args:
        frame: a schema DataFrame (see ``data/schema.py``).
        val_fraction: fraction of groups for ``val``.
        test_fraction: fraction of groups for ``test``.
        seed: the split seed.

    Raises:
        ValueError: when the fractions are negative or add up to more than 1.
    """
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction > 1.0 + 1e-9:
        raise ValueError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must be "
                         "non-negative and add up to at most 1")
    groups = _group_order(np.array(sorted(frame["group"].unique()), dtype=object), seed)
    n = len(groups)
    n_test = int(round(test_fraction * n))
    n_val = min(n - n_test, int(round(val_fraction * n)))
    split_of = {g: "test" for g in groups[:n_test]}
    split_of.update({g: "val" for g in groups[n_test:n_test + n_val]})
    split_of.update({g: "train" for g in groups[n_test + n_val:]})
    out = frame.copy()
    out["split"] = out["group"].map(split_of).astype(str)
    return out


def assign_grouped_folds(frame: pd.DataFrame, num_folds: int, seed: int = 0) -> pd.DataFrame:
    """Returns a copy of ``frame`` whose ``fold`` column is 0..num_folds-1, by group.

    Groups are dealt round-robin in seeded hash order, so folds have near-equal group counts
    and every group sits in exactly one fold, whatever the row order.

    Args:
        frame: a schema DataFrame (see ``data/schema.py``).
        num_folds: how many folds, at least 2.
        seed: the fold seed.

    Raises:
        ValueError: ``num_folds`` is below 2.
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}")
    groups = _group_order(np.array(sorted(frame["group"].unique()), dtype=object), seed)
    fold_of = {g: i % num_folds for i, g in enumerate(groups)}
    out = frame.copy()
    out["fold"] = out["group"].map(fold_of).astype("int64")
    return out


def check_num_folds(source: str, num_folds: int) -> None:
    """Checks a requested number of folds before anything is read.

    Raises:
        ValueError: ``num_folds`` is negative or 1, or is set for Adience to anything but its
            own five folds.
    """
    if num_folds < 0 or num_folds == 1:
        raise ValueError(f"--num_folds={num_folds}: use 0 (a train/val/test split) or at least "
                         "2 folds (bin/cross_validate needs 3: train, validation, test)")
    if source == "adience" and num_folds not in (0, ADIENCE_FOLDS):
        raise ValueError(
            f"--num_folds={num_folds} with --source=adience: Adience keeps the benchmark's "
            f"{ADIENCE_FOLDS} subject-exclusive folds from its fold files; drop --num_folds")


def assign_folds_or_split(frame: pd.DataFrame, *, source: str, num_folds: int,
                          val_fraction: float, test_fraction: float,
                          seed: int = 0) -> pd.DataFrame:
    """Gives a source without folds ``num_folds`` grouped folds, or else a grouped split.

    Folds and splits are exclusive over the reader's ``group`` column: for CelebA that is the
    identity (``identity_CelebA.txt``; without that file each image is its own group), for
    UTKFace the image id, since UTKFace records no identities (its folds are image-exclusive
    only). With folds, ``split`` is cleared, CelebA's own partition included: the folds replace
    it, as they do for Adience. Adience rows (folds from its files) are returned unchanged, as
    are frames that already carry a split when ``num_folds`` is 0 (CelebA's partitions), except
    for ``PARTLY_SPLIT_SOURCES`` (FairFace), whose rows without a split are cut by the fractions.

    Args:
        frame: a reader's schema DataFrame.
        source: the reader's name (``readers.SOURCES``).
        num_folds: k > 0 for folds 0..k-1; 0 for a train/val/test split.
        val_fraction: see ``assign_grouped_split``.
        test_fraction: see ``assign_grouped_split``.
        seed: the split seed, also of the folds.

    Returns:
        A frame with ``fold`` 0..k-1 and ``split`` ``""``, or with a ``split``.

    Raises:
        ValueError: more folds than groups (a fold would be empty), or see ``check_num_folds``.
    """
    check_num_folds(source, num_folds)
    if source == "adience":
        return frame
    if num_folds:
        num_groups = frame["group"].nunique()
        if num_folds > num_groups:
            raise ValueError(f"--num_folds={num_folds} exceeds the {num_groups} groups of the "
                             "dataset: a fold would be empty")
        out = assign_grouped_folds(frame, num_folds, seed=seed)
        out["split"] = ""
        return out
    unsplit = frame["split"] == ""
    if not unsplit.any() or (not unsplit.all() and source not in PARTLY_SPLIT_SOURCES):
        # CelebA's partition list is the split: an image it does not list stays unsplit
        # rather than being dealt to a side where its identity may already be.
        return frame
    if unsplit.all():
        return assign_grouped_split(frame, val_fraction=val_fraction,
                                    test_fraction=test_fraction, seed=seed)
    # Some rows carry the source's own split (FairFace's val CSV is its test set): only the
    # others are cut by the fractions.
    out = frame.copy()
    out.loc[unsplit, "split"] = assign_grouped_split(
        frame[unsplit], val_fraction=val_fraction, test_fraction=test_fraction,
        seed=seed)["split"]
    return out

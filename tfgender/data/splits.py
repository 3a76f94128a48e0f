"""Deterministic grouped splits and folds: one group (identity, album) never sits on two sides."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


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

    Groups are dealt round-robin in seeded hash order, so folds have near-equal group counts.
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}")
    groups = _group_order(np.array(sorted(frame["group"].unique()), dtype=object), seed)
    fold_of = {g: i % num_folds for i, g in enumerate(groups)}
    out = frame.copy()
    out["fold"] = out["group"].map(fold_of).astype("int64")
    return out

"""Random 80:20 train/test splits and the data-depletion chain, plus Table S2.

A split manifest is the slice manifest with one more column, ``subset`` (train/test).

* ``split{k}``: a seeded random split with ``test_fraction`` of the *units* in the test set.
  Units are slices, or whole cases with ``group_by_case`` (so one patient never sits on both
  sides); with ``stratify`` the draw keeps the clinical-label proportions (sklearn's stratified
  ``train_test_split``; for grouped splits the label of a case is its most frequent slice label).
* ``train{pp}``: depletion. Starting from the base 80:20 split, each regime moves a random,
  stratified subset of the previous regime's training units to its test set, until training
  holds ``pp`` % of all units (80 → 60 moves a quarter, 60 → 40 a third, 40 → 20 and 20 → 10 a
  half). Test sets only grow, so every depleted test set contains the previous one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from synergyseg.errors import InputDataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitSettings:
    """The ``splits`` config section."""

    test_fraction: float = 0.2
    stratify: bool = True
    group_by_case: bool = False


def depletion_name(train_fraction: float) -> str:
    """``0.6`` → ``train60``."""
    return f"train{round(train_fraction * 100)}"


def _units(manifest: pd.DataFrame, group_by_case: bool) -> tuple[np.ndarray, np.ndarray]:
    """Unit ids and their labels: slices, or cases labelled by their most frequent slice label."""
    if not group_by_case:
        return manifest["slice_id"].to_numpy(), manifest["label"].to_numpy()
    counts = manifest.groupby(["case", "label"], sort=True).size().reset_index(name="n")
    # most frequent label per case; ties broken by label name so the result is deterministic
    counts = counts.sort_values(["case", "n", "label"], ascending=[True, False, True])
    first = counts.drop_duplicates("case")
    return first["case"].to_numpy(), first["label"].to_numpy()


def _draw(units: np.ndarray, labels: np.ndarray, n_keep: int, seed: int, stratify: bool) -> set:
    """Randomly choose ``n_keep`` of ``units`` (stratified by label when every label can be)."""
    if n_keep <= 0 or n_keep >= len(units):
        raise ValueError(
            f"cannot keep {n_keep} of {len(units)} units on the training side; "
            "the dataset is too small for this fraction"
        )
    _, counts = np.unique(labels, return_counts=True)
    strata = labels if stratify and counts.min() >= 2 and len(counts) > 1 else None
    try:
        kept, _ = train_test_split(units, train_size=n_keep, random_state=seed, stratify=strata)
    except ValueError:  # too few units per label for a stratified draw of this size
        kept, _ = train_test_split(units, train_size=n_keep, random_state=seed, stratify=None)
    return set(kept.tolist())


def _with_subset(manifest: pd.DataFrame, train_units: set, group_by_case: bool) -> pd.DataFrame:
    key = manifest["case"] if group_by_case else manifest["slice_id"]
    out = manifest.copy()
    out["subset"] = np.where(key.isin(train_units), "train", "test")
    return out


def _test_units(n_units: int, test_fraction: float) -> int:
    # rounded first: 0.28 x 25 is 7.000000000000001 in binary, which must give 7, not 8
    return int(np.ceil(round(test_fraction * n_units, 9)))


def random_split(
    manifest: pd.DataFrame,
    settings: SplitSettings,
    seed: int,
    source: str | Path = "the slice manifest",
) -> pd.DataFrame:
    """One seeded train/test split of the slice manifest (read from ``source``, named in
    errors).

    A clinical label that ends up on the training side only is logged as a warning: the
    per-label tables (S3/S4) will lack it for this split. It is not an error, as a rare label
    may simply be too rare.
    """
    if not 0 < settings.test_fraction < 1:
        raise ValueError(
            f"test_fraction must lie strictly between 0 and 1, got {settings.test_fraction}"
        )
    units, labels = _units(manifest, settings.group_by_case)
    n_train = len(units) - _test_units(len(units), settings.test_fraction)
    try:
        train = _draw(units, labels, n_train, seed, settings.stratify)
    except ValueError as err:
        raise InputDataError(source, str(err)) from err
    split = _with_subset(manifest, train, settings.group_by_case)
    missing = sorted(set(split["label"]) - set(split.loc[split["subset"] == "test", "label"]))
    if missing:
        log.warning(
            "%s: no test image labelled %s in this split (seed %d); its per-label tables "
            "will lack that label",
            source,
            ", ".join(missing),
            seed,
        )
    return split


def check_split_count(
    manifest: pd.DataFrame, settings: SplitSettings, n_splits: int, source: str | Path
) -> None:
    """Refuse more splits than the dataset has different ones (they would repeat)."""
    units, _ = _units(manifest, settings.group_by_case)
    possible = math.comb(len(units), _test_units(len(units), settings.test_fraction))
    if n_splits > possible:
        unit = "cases" if settings.group_by_case else "images"
        raise InputDataError(
            source,
            f"config key 'splits.n_splits' asks for {n_splits} splits, but {len(units)} "
            f"{unit} allow only {possible} different ones",
        )


def deplete(
    previous: pd.DataFrame, train_fraction: float, settings: SplitSettings, seed: int
) -> pd.DataFrame:
    """Move training units of ``previous`` to its test set until ``train_fraction`` of all train."""
    units, labels = _units(previous, settings.group_by_case)
    key = previous["case"] if settings.group_by_case else previous["slice_id"]
    in_train = set(key[previous["subset"] == "train"])
    mask = np.array([u in in_train for u in units])
    n_keep = round(train_fraction * len(units))
    if n_keep >= mask.sum():
        raise ValueError(
            f"depletion to {train_fraction:.0%} must shrink the training set "
            f"({mask.sum()} of {len(units)} units train already)"
        )
    kept = _draw(units[mask], labels[mask], n_keep, seed, settings.stratify)
    return _with_subset(previous.drop(columns="subset"), kept, settings.group_by_case)

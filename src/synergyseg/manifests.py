"""Reading split manifests: the rows of one side of a split, as every later stage needs them.

Kept apart from :mod:`synergyseg.splits` (which draws splits with scikit-learn) so the jobs
that only read a split neither import scikit-learn nor re-run when the drawing code changes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synergyseg.errors import InputDataError

#: columns that are names, whatever they look like: a slice id "007" must not become 7
NAME_COLUMNS = {"slice_id": str, "case": str, "label": str}


def read_manifest(manifest_csv: str | Path) -> pd.DataFrame:
    """A slice manifest or split manifest as written, its name columns kept as text."""
    return pd.read_csv(manifest_csv, dtype=NAME_COLUMNS)


def read_split(split_csv: str | Path, subset: str) -> pd.DataFrame:
    """Rows of one side (train/test) of a split manifest, in manifest order."""
    table = read_manifest(split_csv)
    if "subset" not in table.columns:
        raise InputDataError(split_csv, "is not a split manifest (no 'subset' column)")
    for column in ("slice_id", "row", "label"):
        if column not in table.columns:
            raise InputDataError(split_csv, f"is not a split manifest (no {column!r} column)")
    duplicated = table["slice_id"][table["slice_id"].duplicated()]
    if not duplicated.empty:
        raise InputDataError(split_csv, f"lists slice id {duplicated.iloc[0]!r} more than once")
    unlabelled = int(table["label"].isna().sum())
    if unlabelled:
        raise InputDataError(split_csv, f"has {unlabelled} rows without a clinical label")
    rows = table[table["subset"] == subset].reset_index(drop=True)
    if rows.empty:
        raise InputDataError(split_csv, f"has no {subset} rows")
    return rows

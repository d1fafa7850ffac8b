"""Table S2 (clinical labels per regime and side) and the table helpers every table shares:
Markdown rendering and the order of regimes.

Kept apart from the statistics tables so that Table S2, which only counts labels of the split
manifests, is not redone when metric or statistics code changes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from synergyseg.atomic import write_csv, write_text
from synergyseg.manifests import read_manifest

SPLIT_REGIME = re.compile(r"^split(\d+)$")
DEPLETION_REGIME = re.compile(r"^train(\d+)$")


def regime_order(names: Sequence[str]) -> list[str]:
    """Splits first (by index), then depletion regimes from most to least training data."""

    def key(name: str):
        if m := SPLIT_REGIME.match(name):
            return (0, int(m.group(1)))
        if m := DEPLETION_REGIME.match(name):
            return (1, -int(m.group(1)))
        return (2, name)

    return sorted(names, key=key)


def label_table(regimes: dict[str, pd.DataFrame], dataset: str) -> pd.DataFrame:
    """Table S2: number and percentage of each clinical label per regime and side."""
    rows = []
    for regime, frame in regimes.items():
        for subset in ("train", "test"):
            side = frame[frame["subset"] == subset]
            counts = side["label"].value_counts()
            for label in sorted(frame["label"].unique()):
                n = int(counts.get(label, 0))
                rows.append(
                    {
                        "dataset": dataset,
                        "regime": regime,
                        "subset": subset,
                        "label": label,
                        "n": n,
                        "percent": round(100.0 * n / len(side), 2) if len(side) else float("nan"),
                    }
                )
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame, title: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (via pandas/tabulate) with an optional heading."""
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = [("–" if pd.isna(v) else f"{v:.4g}") for v in shown[column]]
        elif pd.api.types.is_numeric_dtype(shown[column]):  # counts, nullable where undefined
            shown[column] = [("–" if pd.isna(v) else str(v)) for v in shown[column]]
        else:
            shown[column] = shown[column].fillna("")
    body = shown.to_markdown(index=False, disable_numparse=True)
    return (f"## {title}\n\n" if title else "") + body + "\n"


def table_s2_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Paper layout of Table S2: one row per dataset and label, ``n (%)`` per regime and side."""
    cell = long.assign(
        value=[f"{n} ({p:.0f})" for n, p in zip(long["n"], long["percent"], strict=True)]
    )
    wide = cell.pivot_table(
        index=["dataset", "label"], columns=["regime", "subset"], values="value", aggfunc="first"
    )
    columns = [(r, s) for r in regime_order(long["regime"].unique()) for s in ("train", "test")]
    wide = wide.reindex(columns=columns)
    wide.columns = [f"{r} {s} n (%)" for r, s in columns]
    return wide.reset_index()


def write_table_s2(long: pd.DataFrame, csv_path: str | Path, md_path: str | Path) -> None:
    """Table S2: label counts per split and side, long-form CSV and paper-style Markdown."""
    write_csv(long, csv_path)
    title = "Table S2: clinical labels per regime and side (n and % of that side)"
    write_text(markdown(table_s2_wide(long), title), md_path)


def table_s2_from_splits(split_csvs: Sequence[str | Path]) -> pd.DataFrame:
    """Long-form Table S2 from split manifests at ``results/<dataset>/splits/<regime>.csv``."""
    parts = []
    for path in map(Path, split_csvs):
        frame = read_manifest(path)
        parts.append(label_table({path.stem: frame}, dataset=path.parts[-3]))
    return pd.concat(parts, ignore_index=True)


def training_percents(
    selected: str, regimes: Sequence[str], test_fraction: float
) -> dict[str, int]:
    """Training share (%) per regime for Table 3 and the depletion plot: the selected split at
    its nominal 100·(1 − test_fraction), each depletion regime ``train<p>`` at p."""
    percents = {selected: round(100 * (1 - test_fraction))}
    for regime in regimes:
        match = DEPLETION_REGIME.match(regime)
        if match:
            percents[regime] = int(match.group(1))
    return percents

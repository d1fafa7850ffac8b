"""Result tables as CSV (for machines) and Markdown (for people), written atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synergyseg.io import write_csv, write_text
from synergyseg.splits import regime_order


def markdown(frame: pd.DataFrame, title: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (via pandas/tabulate) with an optional heading."""
    body = frame.to_markdown(index=False, disable_numparse=True)
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

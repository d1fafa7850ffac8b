"""Conventions shared by the statistics and the split selection: replicate medians and the †
rule, and the choice of the depletion base split.

A module of its own because the depletion regimes (and their training jobs) depend on the split
selection: editing the statistical tests in ``stats.py`` must not look like a change to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

PRACTICAL_DIFFERENCE = 0.05
METRICS = ("auroc", "dice", "sensitivity", "specificity")


def replicate_medians(replicates: Sequence[pd.DataFrame], metric: str) -> pd.Series:
    """Per-image median over replicates (NaN-aware), indexed by slice id."""
    columns = [r.set_index("slice_id")[metric] for r in replicates]
    return pd.concat(columns, axis=1).median(axis=1, skipna=True)


# metric values are at most 1: differences this small are float rounding, not a difference
FLOAT_SLACK = 1e-9


def practical_mark(lmi: float, tii: float, threshold: float = PRACTICAL_DIFFERENCE) -> str | None:
    """'tii' or 'lmi' when that model is better by more than ``threshold``, else None.

    A difference equal to the threshold is not "more": the comparison allows for float
    rounding, so 0.90 vs 0.85 (0.05000000000000004 in binary) is unmarked like 0.95 vs 0.90.
    """
    if np.isnan(lmi) or np.isnan(tii) or abs(tii - lmi) <= threshold + FLOAT_SLACK:
        return None
    return "tii" if tii > lmi else "lmi"


def per_image_table(metric_tables: Mapping[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """Long table: slice_id, label, metric, lmi, tii, delta (TII − LMI of replicate medians)."""
    labels = next(iter(metric_tables.values())).set_index("slice_id")["label"]
    rows = []
    for metric in METRICS:
        medians = {}
        for init in ("lmi", "tii"):
            reps = [t for (i, _), t in sorted(metric_tables.items()) if i == init]
            medians[init] = replicate_medians(reps, metric)
        frame = pd.DataFrame({"lmi": medians["lmi"], "tii": medians["tii"]})
        frame.insert(0, "metric", metric)
        frame.insert(0, "label", labels.reindex(frame.index))
        frame["delta"] = frame["tii"] - frame["lmi"]
        rows.append(frame.rename_axis("slice_id").reset_index())
    return pd.concat(rows, ignore_index=True)


def dagger_count(
    summary: Mapping[str, tuple[float, float]], threshold: float = PRACTICAL_DIFFERENCE
) -> int:
    """Number of metrics whose (LMI, TII) medians carry a † mark."""
    return sum(practical_mark(lmi, tii, threshold) is not None for lmi, tii in summary.values())


def select_split(
    per_split: Mapping[int, Mapping[str, tuple[float, float]]],
    fixed: int | None = None,
    threshold: float = PRACTICAL_DIFFERENCE,
):
    """(chosen split index, record rows): most † marks, ties to the lowest index."""
    record = [
        {"split": k, "daggers": dagger_count(summary, threshold), "chosen": False}
        for k, summary in sorted(per_split.items())
    ]
    if fixed is not None:
        if fixed not in per_split:
            raise ValueError(f"fixed split {fixed} is not among the splits {sorted(per_split)}")
        chosen, reason = fixed, "fixed in the config"
    else:
        best = max(r["daggers"] for r in record)
        chosen = min(r["split"] for r in record if r["daggers"] == best)
        reason = f"most metrics with a † ({best}); ties to the lowest index"
    for row in record:
        row["chosen"] = row["split"] == chosen
        row["reason"] = reason if row["chosen"] else ""
    return chosen, record


def read_metric_tables(metric_csvs: Sequence[str]) -> dict[tuple[str, int], pd.DataFrame]:
    """``{(init, rep): table}`` from metric files named ``…/<init>/rep<k>.csv``."""
    return {
        (Path(p).parent.name, int(Path(p).stem.removeprefix("rep"))): pd.read_csv(
            p, dtype={"slice_id": str, "label": str}
        )
        for p in metric_csvs
    }


def selection_from_metrics(
    metric_csvs: Sequence[str], threshold: float = PRACTICAL_DIFFERENCE, fixed: int | None = None
):
    """Split selection straight from the per-model metric CSVs of every 80:20 split.

    Working from the metrics (not from the test tables) keeps the depletion regimes — and so
    their training jobs — independent of settings such as ``alpha`` that only change tests.
    """
    by_split: dict[int, list[str]] = {}
    for path in metric_csvs:
        by_split.setdefault(int(Path(path).parent.parent.name.removeprefix("split")), []).append(
            path
        )
    summaries = {}
    for split, paths in by_split.items():
        per_image = per_image_table(read_metric_tables(paths))
        summaries[split] = {
            metric: (float(frame["lmi"].median()), float(frame["tii"].median()))
            for metric, frame in per_image.groupby("metric", sort=False)
        }
    chosen, record = select_split(summaries, fixed, threshold)
    return chosen, pd.DataFrame(record)


def read_selection(path: str | Path) -> int:
    """The chosen split index from a split-selection record."""
    record = pd.read_csv(path)
    return int(record.loc[record["chosen"], "split"].iloc[0])


def selected_regime(selection_csv: str | Path) -> str:
    """The regime name (``split<k>``) of the selected split."""
    return f"split{read_selection(selection_csv)}"


def pick_regime(paths: Sequence[str | Path], regime: str) -> str:
    """The one path among a rule's inputs that belongs to ``regime`` (a folder of that name,
    or a file ``<regime>.csv``): rules list every split, the selection says which is used."""
    matches = [str(p) for p in paths if regime in Path(p).parts or Path(p).stem == regime]
    if len(matches) != 1:
        raise ValueError(f"expected one input of regime {regime!r}, found {matches}")
    return matches[0]


def regime_files(paths: Sequence[str | Path], regime: str) -> list[str]:
    """Every path among a rule's inputs that lies in a folder named ``regime``."""
    matches = [str(p) for p in paths if regime in Path(p).parts]
    if not matches:
        raise ValueError(f"no input of regime {regime!r} among {len(paths)} files")
    return matches

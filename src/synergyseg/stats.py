"""The study's statistical conventions, each defined once: replicate medians, Δm, the † rule,
Mood's median test with its tie rule, and split selection.

* Replicates: for each test image and init, the median over the R replicates of a metric,
  ignoring undefined (NaN) replicate values; an image whose every replicate is undefined stays
  undefined and is left out of every distribution.
* Δm (eq. 1) = TII − LMI of those per-image medians.
* † (practical difference): marks the better model when |TII − LMI| > 0.05.
* Mood's median test (``scipy.stats.median_test``, ties counted *below* the grand median as in
  scipy's default). scipy raises when a row of the 2x2 table is empty, which happens when the
  grand median equals the maximum (many Dice or specificity values of exactly 1.0). Tie rule:
  then the test is repeated with ties counted *above*; if that table is degenerate too (every
  value equals the grand median) the test is undefined (p = NaN, no ``*``). ``ties_rule`` in
  the result says which applied.
* Split selection: the 80:20 split whose medians carry the most † marks, ties to the lowest
  index (this reproduces the paper's choice of Set 1 from Table S1), unless fixed in the config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

PRACTICAL_DIFFERENCE = 0.05
ALPHA = 0.05
METRICS = ("auroc", "dice", "sensitivity", "specificity")


def replicate_medians(replicates: Sequence[pd.DataFrame], metric: str) -> pd.Series:
    """Per-image median over replicates (NaN-aware), indexed by slice id."""
    columns = [r.set_index("slice_id")[metric] for r in replicates]
    return pd.concat(columns, axis=1).median(axis=1, skipna=True)


def practical_mark(lmi: float, tii: float, threshold: float = PRACTICAL_DIFFERENCE) -> str | None:
    """'tii' or 'lmi' when that model is better by more than ``threshold``, else None."""
    if np.isnan(lmi) or np.isnan(tii) or abs(tii - lmi) <= threshold:
        return None
    return "tii" if tii > lmi else "lmi"


@dataclass(frozen=True)
class MoodResult:
    """One Mood's median test between the LMI and TII per-image medians."""

    statistic: float
    p: float
    grand_median: float
    table: tuple[tuple[int, int], tuple[int, int]] | None  # rows above/below, columns LMI/TII
    n_lmi: int
    n_tii: int
    ties_rule: str

    def significant(self, alpha: float = ALPHA) -> bool:
        return bool(self.p < alpha) if not np.isnan(self.p) else False


def mood_test(lmi: Sequence[float], tii: Sequence[float]) -> MoodResult:
    """Mood's median test on the defined values of two samples, with the documented tie rule."""
    a = np.asarray(lmi, dtype=float)
    b = np.asarray(tii, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:
        return MoodResult(np.nan, np.nan, np.nan, None, len(a), len(b), "empty sample")
    for ties in ("below", "above"):
        try:
            statistic, p, median, table = sps.median_test(a, b, ties=ties)
        except ValueError:
            continue
        cells = tuple(tuple(int(v) for v in row) for row in table)
        return MoodResult(float(statistic), float(p), float(median), cells, len(a), len(b), ties)
    grand = float(np.median(np.concatenate([a, b])))
    return MoodResult(np.nan, np.nan, grand, None, len(a), len(b), "undefined: all at the median")


def dagger_count(summary: Mapping[str, tuple[float, float]]) -> int:
    """Number of metrics whose (LMI, TII) medians carry a † mark."""
    return sum(practical_mark(lmi, tii) is not None for lmi, tii in summary.values())


def select_split(
    per_split: Mapping[int, Mapping[str, tuple[float, float]]], fixed: int | None = None
):
    """(chosen split index, record rows): most † marks, ties to the lowest index."""
    record = [
        {"split": k, "daggers": dagger_count(summary), "chosen": False}
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

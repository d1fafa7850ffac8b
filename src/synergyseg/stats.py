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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from synergyseg.selection import (
    PRACTICAL_DIFFERENCE,
    per_image_table,
    practical_mark,
    read_metric_tables,
)

ALPHA = 0.05


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


# ---------------------------------------------------------------------------------------------
# one regime: per-image medians, summaries, tests


@dataclass(frozen=True)
class StatsSettings:
    """The ``stats`` config section."""

    alpha: float = ALPHA
    practical_difference: float = PRACTICAL_DIFFERENCE
    high_score: float = 0.9
    bootstrap_resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0


#: values per bootstrap batch (resamples x images): 4 Mi float64 = 32 MB per array, whatever
#: the test side; unbatched, 2,000 resamples of a 40,882-slice side took 1.4 GB.
BOOTSTRAP_BATCH_VALUES = 4 * 2**20


def _bootstrap_median_ci(delta: np.ndarray, settings: StatsSettings) -> tuple[float, float]:
    """Percentile CI of the median Δm. Resamples are drawn in batches to bound memory; scipy
    draws them from the generator in the same order either way, so the interval is the same."""
    if len(delta) < 2 or np.all(delta == delta[0]):
        value = float(delta[0]) if len(delta) else np.nan
        return value, value
    result = sps.bootstrap(
        (delta,),
        np.median,
        n_resamples=settings.bootstrap_resamples,
        batch=max(1, BOOTSTRAP_BATCH_VALUES // len(delta)),
        confidence_level=settings.confidence,
        method="percentile",
        random_state=np.random.default_rng(settings.seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _wilcoxon(delta: np.ndarray) -> tuple[float, float]:
    nonzero = delta[delta != 0]
    if len(nonzero) == 0:
        return np.nan, np.nan
    result = sps.wilcoxon(delta, zero_method="wilcox")
    return float(result.statistic), float(result.pvalue)


def metric_tests(per_image: pd.DataFrame, settings: StatsSettings) -> pd.DataFrame:
    """One row per metric: summaries per init, †, Mood's test, Δm counts, Wilcoxon, bootstrap CI."""
    rows = []
    for metric, frame in per_image.groupby("metric", sort=False):
        lmi, tii = frame["lmi"].to_numpy(float), frame["tii"].to_numpy(float)
        mood = mood_test(lmi, tii)
        both = ~np.isnan(lmi) & ~np.isnan(tii)
        delta = (tii - lmi)[both]
        row = {"metric": metric, "n_images": len(frame)}
        for name, values in (("lmi", lmi), ("tii", tii)):
            defined = values[~np.isnan(values)]
            row[f"{name}_n"] = len(defined)
            row[f"{name}_median"] = float(np.median(defined)) if len(defined) else np.nan
            row[f"{name}_mean"] = float(np.mean(defined)) if len(defined) else np.nan
            row[f"{name}_sd"] = float(np.std(defined, ddof=1)) if len(defined) > 1 else np.nan
            row[f"{name}_high_scores"] = int((defined >= settings.high_score).sum())
        row["dagger_median"] = practical_mark(
            row["lmi_median"], row["tii_median"], settings.practical_difference
        )
        row["dagger_mean"] = practical_mark(
            row["lmi_mean"], row["tii_mean"], settings.practical_difference
        )
        row.update(
            mood_statistic=mood.statistic,
            mood_p=mood.p,
            mood_significant=mood.significant(settings.alpha),
            mood_grand_median=mood.grand_median,
            mood_table=None if mood.table is None else str([list(r) for r in mood.table]),
            mood_ties_rule=mood.ties_rule,
            delta_positive=int((delta > 0).sum()),
            delta_zero=int((delta == 0).sum()),
            delta_negative=int((delta < 0).sum()),
            delta_undefined=int((~both).sum()),
        )
        row["wilcoxon_statistic"], row["wilcoxon_p"] = _wilcoxon(delta)
        row["median_delta"] = float(np.median(delta)) if len(delta) else np.nan
        row["median_delta_ci_low"], row["median_delta_ci_high"] = (
            _bootstrap_median_ci(delta, settings) if len(delta) else (np.nan, np.nan)
        )
        rows.append(row)
    return pd.DataFrame(rows)


def normality(per_image: pd.DataFrame) -> pd.DataFrame:
    """Shapiro–Wilk per metric and init, before and after a Yeo–Johnson transform."""
    rows = []
    for metric, frame in per_image.groupby("metric", sort=False):
        for init in ("lmi", "tii"):
            values = frame[init].dropna().to_numpy(float)
            row = {"metric": metric, "init": init, "n": len(values)}
            if len(values) >= 3 and np.ptp(values) > 0:
                row["shapiro_w"], row["shapiro_p"] = map(float, sps.shapiro(values))
                transformed, lam = sps.yeojohnson(values)
                row["yeojohnson_lambda"] = float(lam)
                if np.ptp(transformed) > 0:
                    row["shapiro_w_yj"], row["shapiro_p_yj"] = map(float, sps.shapiro(transformed))
            rows.append(row)
    columns = [
        "metric",
        "init",
        "n",
        "shapiro_w",
        "shapiro_p",
        "yeojohnson_lambda",
        "shapiro_w_yj",
        "shapiro_p_yj",
    ]
    return pd.DataFrame(rows).reindex(columns=columns)


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm-adjusted p-values and rejections over a family (NaN tests stay NaN, not rejected)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    defined = ~np.isnan(p)
    if defined.any():
        reject[defined], adjusted[defined], _, _ = multipletests(
            p[defined], alpha=alpha, method="holm"
        )
    return adjusted, reject


def regime_statistics(metric_csvs: Sequence[str], settings: StatsSettings):
    """(per_image, tests, normality) for one dataset and regime from its per-model metric CSVs
    (paths ``…/metrics/<regime>/<init>/rep<k>.csv``)."""
    tables = read_metric_tables(metric_csvs)
    per_image = per_image_table(tables)
    return per_image, metric_tests(per_image, settings), normality(per_image)

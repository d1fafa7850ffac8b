"""Result tables of the statistics stage as CSV (for machines) and Markdown (for people).

Tables 1-3, S1, S3/S4, Mood's tests, normality, synergy and split selection; Table S2 lives in
:mod:`synergyseg.label_tables`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from synergyseg.atomic import write_csv, write_text
from synergyseg.label_tables import (
    DEPLETION_REGIME,
    SPLIT_REGIME,
    markdown,
    regime_order,
    training_percents,
)
from synergyseg.selection import practical_mark, read_selection
from synergyseg.stats import holm
from synergyseg.synergy import synergy_summary

METRIC_NAMES = {
    "auroc": "AUROC",
    "dice": "Dice score",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
}
INIT_NAMES = {"lmi": "LMI", "tii": "TII"}


def _cell(value: float, star: bool = False, dagger: bool = False) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.4f}" + ("*" if star else "") + ("†" if dagger else "")


def summary_table(
    tests: dict[str, pd.DataFrame], daggers_on=("median", "mean"), stars=True
) -> pd.DataFrame:
    """Tables 1 and S1: rows metric × (median, mean, sd); columns <group> <init>.

    ``tests`` maps a column group (dataset, or split) to its metric_tests frame. ``*`` marks both
    inits' medians when Mood's test is significant; ``†`` the better init where |Δ| > 0.05.
    """
    rows = []
    for metric in METRIC_NAMES:
        for stat in ("median", "mean", "sd"):
            row = {"metric": METRIC_NAMES[metric], "statistic": stat}
            for group, frame in tests.items():
                found = frame[frame["metric"] == metric]
                if found.empty:
                    continue
                r = found.iloc[0]
                for init in ("lmi", "tii"):
                    star = bool(stars and stat == "median" and r["mood_significant"])
                    dagger = stat in daggers_on and r.get(f"dagger_{stat}") == init
                    row[f"{group} {INIT_NAMES[init]}"] = _cell(r[f"{init}_{stat}"], star, dagger)
            rows.append(row)
    return pd.DataFrame(rows)


def _mark_larger(a: int, b: int, n: int, threshold: float) -> tuple[str, str]:
    """† on the larger of two counts when they differ by more than ``threshold`` of ``n``."""
    if n and abs(a - b) > threshold * n:
        return ("†", "") if a > b else ("", "†")
    return "", ""


def table2(tests: dict[str, pd.DataFrame], high_score: float, threshold: float) -> pd.DataFrame:
    """Δm counts per dataset and metric (selected split), and images scoring >= ``high_score``.

    Undefined Δm (e.g. Dice of an image without foreground) get their own column; the paper's
    kidney table counted them as Δm = 0. Every † compares counts as shares of all ``n`` test
    images, the base of the percentages printed beside them.
    """
    rows = []
    for dataset, frame in tests.items():
        for r in frame.to_dict("records"):
            n = r["n_images"]
            pos, neg = _mark_larger(r["delta_positive"], r["delta_negative"], n, threshold)
            high_lmi, high_tii = _mark_larger(
                r["lmi_high_scores"], r["tii_high_scores"], n, threshold
            )

            def pct(k, n=n):
                return f"{k} ({100 * k / n:.0f})" if n else str(k)

            rows.append(
                {
                    "dataset": dataset,
                    "metric": METRIC_NAMES[r["metric"]],
                    "n_test": n,
                    "Δm > 0 (TII better) n (%)": pct(r["delta_positive"]) + pos,
                    "Δm = 0 n (%)": pct(r["delta_zero"]),
                    "Δm < 0 (LMI better) n (%)": pct(r["delta_negative"]) + neg,
                    "Δm undefined n (%)": pct(r["delta_undefined"]),
                    f"LMI ≥ {high_score:g}": f"{r['lmi_high_scores']}{high_lmi}",
                    f"TII ≥ {high_score:g}": f"{r['tii_high_scores']}{high_tii}",
                }
            )
    return pd.DataFrame(rows)


def table3(
    tests: dict[str, dict[str, pd.DataFrame]], percents: dict[str, dict[str, int]]
) -> pd.DataFrame:
    """Depletion: medians per metric and training share (rows), dataset × init (columns).

    ``tests[dataset][regime]``; ``percents[dataset][regime]`` is the training share in % (80
    for the selected split of an 80:20 protocol). A share that differs between datasets (a
    dataset's own ``splits.test_fraction``) is printed per dataset."""
    regimes = {regime for shares in percents.values() for regime in shares}

    def share(regime):
        values = {d: shares[regime] for d, shares in percents.items() if regime in shares}
        if len(set(values.values())) == 1:
            return next(iter(values.values()))
        return ", ".join(f"{d} {p}" for d, p in values.items())

    def order(regime):
        return max(shares[regime] for shares in percents.values() if regime in shares)

    rows = []
    for metric in METRIC_NAMES:
        for regime in sorted(regimes, key=order):
            row = {"metric": METRIC_NAMES[metric], "training %": share(regime)}
            for dataset, per_regime in tests.items():
                frame = per_regime.get(regime)
                if frame is None or frame[frame["metric"] == metric].empty:
                    continue
                r = frame[frame["metric"] == metric].iloc[0]
                for init in ("lmi", "tii"):
                    row[f"{dataset} {INIT_NAMES[init]}"] = _cell(
                        r[f"{init}_median"], bool(r["mood_significant"]), r["dagger_median"] == init
                    )
            rows.append(row)
    return pd.DataFrame(rows)


def dice_by_label(per_image: dict[str, pd.DataFrame], threshold: float) -> pd.DataFrame:
    """Tables S3/S4: Dice of the per-image medians by clinical label, per dataset."""
    rows = []
    for dataset, frame in per_image.items():
        dice = frame[frame["metric"] == "dice"]
        for label, group in dice.groupby("label", sort=True):
            stats = {}
            for init in ("lmi", "tii"):
                values = group[init].dropna()
                stats[init] = (values.median(), values.mean(), values.std(ddof=1), len(values))
            if stats["lmi"][3] == 0 and stats["tii"][3] == 0:
                continue  # Dice is undefined for every image of this label (no foreground)
            for k, name in enumerate(("median", "mean", "sd")):
                mark = (
                    practical_mark(stats["lmi"][k], stats["tii"][k], threshold) if k < 2 else None
                )
                rows.append(
                    {
                        "dataset": dataset,
                        "label": label,
                        "n": stats["tii"][3],
                        "statistic": name,
                        "LMI": _cell(stats["lmi"][k], dagger=mark == "lmi"),
                        "TII": _cell(stats["tii"][k], dagger=mark == "tii"),
                    }
                )
    return pd.DataFrame(rows)


def write_table(frame: pd.DataFrame, stem: str | Path, title: str) -> None:
    """``<stem>.csv`` and ``<stem>.md``."""
    write_csv(frame, f"{stem}.csv")
    write_text(markdown(frame, title), f"{stem}.md")


def write_study_tables(
    stats_dirs: dict[str, str | Path],
    regimes: Sequence[str],
    settings,
    out_dir: str | Path,
    test_fractions: Mapping[str, float],
) -> None:
    """Every statistics table for all datasets, from ``<stats_dir>/<regime>/*.csv`` and
    ``<stats_dir>/split_selection.csv``, into ``out_dir`` as CSV and Markdown.
    ``test_fractions[dataset]`` is the test share of its random splits."""
    out = Path(out_dir)
    splits = [r for r in regime_order(regimes) if SPLIT_REGIME.match(r)]
    depletions = [r for r in regime_order(regimes) if DEPLETION_REGIME.match(r)]

    def load(dataset, regime, name):
        return pd.read_csv(
            Path(stats_dirs[dataset]) / regime / f"{name}.csv",
            dtype={"slice_id": str, "label": str},
        )

    selected, tests_all, selections = {}, {}, []
    for dataset, stats_dir in stats_dirs.items():
        selected[dataset] = f"split{read_selection(Path(stats_dir) / 'split_selection.csv')}"
        tests_all[dataset] = {r: load(dataset, r, "tests") for r in regimes}
        record = pd.read_csv(Path(stats_dir) / "split_selection.csv")
        record.insert(0, "dataset", dataset)
        selections.append(record)
    pd_sel = pd.concat(selections, ignore_index=True)
    write_table(pd_sel, out / "split_selection", "Split selection: † marks per random split")

    table1_tests = {d: tests_all[d][selected[d]] for d in stats_dirs}
    write_table(summary_table(table1_tests), out / "table1", "Table 1: selected random split")
    for dataset in stats_dirs:
        per_split = {f"Set {r.removeprefix('split')}": tests_all[dataset][r] for r in splits}
        write_table(
            summary_table(per_split, daggers_on=("median",), stars=False),
            out / f"table_s1_{dataset}",
            f"Table S1 ({dataset}): every random split",
        )
    write_table(
        table2(table1_tests, settings.high_score, settings.practical_difference),
        out / "table2",
        "Table 2: per-image Δm = TII − LMI on the selected split",
    )
    if depletions:
        percents = {
            d: training_percents("selected", depletions, test_fractions[d]) for d in stats_dirs
        }
        per_dataset = {
            d: {"selected": table1_tests[d]} | {r: tests_all[d][r] for r in depletions}
            for d in stats_dirs
        }
        write_table(
            table3(per_dataset, percents), out / "table3", "Table 3: depletion regimes (medians)"
        )
    per_image = {d: load(d, selected[d], "per_image") for d in stats_dirs}
    write_table(
        dice_by_label(per_image, settings.practical_difference),
        out / "table_s3_s4",
        "Tables S3/S4: Dice by clinical label (selected split)",
    )

    # Mood's tests with Holm correction per table family; the tests beyond the paper
    mood_rows = []
    for dataset in stats_dirs:
        for regime in regimes:
            frame = tests_all[dataset][regime].copy()
            frame.insert(0, "regime", regime)
            frame.insert(0, "dataset", dataset)
            frame["family"] = np.where(
                regime == selected[dataset],
                "table1",
                np.where(frame["regime"].str.startswith("train"), "table3", "table_s1"),
            )
            mood_rows.append(frame)
    mood = pd.concat(mood_rows, ignore_index=True)
    for column in ("mood_p", "wilcoxon_p"):
        mood[f"{column}_holm"] = np.nan
        for _, index in mood.groupby("family").groups.items():
            adjusted, _ = holm(mood.loc[index, column].to_numpy(), settings.alpha)
            mood.loc[index, f"{column}_holm"] = adjusted
    columns = [
        "dataset",
        "regime",
        "family",
        "metric",
        "lmi_n",
        "tii_n",
        "mood_statistic",
        "mood_p",
        "mood_p_holm",
        "mood_significant",
        "mood_grand_median",
        "mood_table",
        "mood_ties_rule",
    ]
    write_table(
        mood[columns], out / "mood_tests", "Mood's median tests (LMI vs TII per-image medians)"
    )
    beyond = mood[mood["family"] == "table1"][
        [
            "dataset",
            "metric",
            "median_delta",
            "median_delta_ci_low",
            "median_delta_ci_high",
            "wilcoxon_statistic",
            "wilcoxon_p",
            "wilcoxon_p_holm",
            "mood_p",
            "mood_p_holm",
        ]
    ]
    write_table(
        beyond, out / "table_beyond", "Beyond the paper: paired tests on Δm (selected split)"
    )

    def stacked(name, transform=lambda frame: frame):
        """One selected-split table per dataset, stacked with a dataset column."""
        parts = []
        for dataset in stats_dirs:
            frame = transform(load(dataset, selected[dataset], name))
            frame.insert(0, "dataset", dataset)
            parts.append(frame)
        return pd.concat(parts, ignore_index=True)

    write_table(
        stacked("normality"), out / "normality", "Shapiro–Wilk before and after Yeo–Johnson"
    )
    write_table(
        stacked("synergy", synergy_summary),
        out / "synergy",
        "Synergy: union and intersection of TII and LMI masks",
    )

"""Per-image metric distributions: Fig S1 QQ plots and Fig S2–S4 style grouped histograms.

Both read the replicate medians per image (``per_image.csv``) of one regime; the QQ plots take
the Yeo–Johnson λ and the Shapiro–Wilk results from ``normality.csv``, so the figure shows the
very transform the statistics used, and the histograms quote Mood's test from ``tests.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats as sps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from synergyseg.figures.style import INIT_COLOURS, INIT_NAMES, METRIC_NAMES, new_figure
from synergyseg.showcase import labels_shown

SHOWN_METRICS = ("auroc", "dice")
BIN_EDGES = np.linspace(0.0, 1.0, 21)  # 0.05-wide bins over [0, 1]


def _normality_row(normality: pd.DataFrame, metric: str, init: str) -> pd.Series | None:
    match = normality[(normality["metric"] == metric) & (normality["init"] == init)]
    return None if match.empty else match.iloc[0]


def _p_text(p: float) -> str:
    return "n/a" if pd.isna(p) else f"{p:.2g}"


def standardised(values: np.ndarray) -> np.ndarray:
    """z-scores: a QQ plot's shape is unchanged, and a normal sample then lies on y = x."""
    return (values - values.mean()) / values.std(ddof=1)


def qq_figure(per_image: pd.DataFrame, normality: pd.DataFrame, title: str) -> Figure:
    """Fig S1: rows AUROC, Dice; columns LMI, LMI after YJ, TII, TII after YJ. Samples are
    standardised, so the red diagonal y = x is the standard normal distribution."""
    columns = [(init, yj) for init in ("lmi", "tii") for yj in (False, True)]
    fig = new_figure(2.1 * len(columns) + 0.4, 2.2 * len(SHOWN_METRICS) + 0.5)
    axes = fig.subplots(len(SHOWN_METRICS), len(columns), squeeze=False)
    for r, metric in enumerate(SHOWN_METRICS):
        values = per_image.loc[per_image["metric"] == metric]
        for c, (init, yj) in enumerate(columns):
            ax = axes[r, c]
            data = values[init].dropna().to_numpy(float)
            row = _normality_row(normality, metric, init)
            name = f"{METRIC_NAMES[metric]}, {INIT_NAMES[init]}" + (" after YJ" if yj else "")
            ax.set_title(name)
            if row is None or len(data) < 3 or np.ptp(data) == 0 or pd.isna(row["shapiro_p"]):
                ax.text(0.5, 0.5, "too few distinct values", ha="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            if yj:
                data = sps.yeojohnson(data, lmbda=float(row["yeojohnson_lambda"]))
            if np.ptp(data) == 0:
                ax.text(0.5, 0.5, "constant after YJ", ha="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            theoretical, ordered = sps.probplot(standardised(data), dist="norm", fit=False)
            ax.plot(theoretical, ordered, "o", color="tab:blue", markersize=2.5)
            low, high = min(theoretical.min(), ordered.min()), max(theoretical.max(), ordered.max())
            ax.plot([low, high], [low, high], color="red", linewidth=1)
            p = row["shapiro_p_yj"] if yj else row["shapiro_p"]
            note = f"Shapiro–Wilk p = {_p_text(p)}\nn = {len(data)}"
            if yj:
                note += f", λ = {float(row['yeojohnson_lambda']):.2f}"
            ax.text(0.03, 0.97, note, transform=ax.transAxes, va="top", fontsize=6.5)
            if r == len(SHOWN_METRICS) - 1:
                ax.set_xlabel("normal quantiles")
            if c == 0:
                ax.set_ylabel("standardised sample quantiles")
    fig.suptitle(title)
    return fig


def _histogram(ax, frame: pd.DataFrame, metric: str, test: pd.Series | None) -> str:
    """Grouped bars and dashed median lines of both models; returns a summary for the title."""
    width = np.diff(BIN_EDGES)[0] / 2
    centres = BIN_EDGES[:-1] + width
    values = frame[frame["metric"] == metric]
    medians, counts = {}, {}
    for offset, init in ((-width / 2, "lmi"), (width / 2, "tii")):
        data = values[init].dropna().to_numpy(float)
        histogram, _ = np.histogram(np.clip(data, 0, 1), bins=BIN_EDGES)
        ax.bar(centres + offset, histogram, width=width, color=INIT_COLOURS[init])
        counts[init] = len(data)
        if len(data):
            medians[init] = float(np.median(data))
            ax.axvline(medians[init], color=INIT_COLOURS[init], linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel(METRIC_NAMES[metric])
    ax.set_ylabel("test images")
    if not medians:
        ax.set_yticks([])
        return "undefined for every image (no foreground)"
    n = (
        f"n = {counts['lmi']}"
        if counts["lmi"] == counts["tii"]
        else f"n = {counts['lmi']} LMI, {counts['tii']} TII"
    )
    text = "median " + ", ".join(f"{INIT_NAMES[i]} {m:.3f}" for i, m in medians.items())
    text += f" ({n})"
    if test is not None and not pd.isna(test["mood_p"]):
        star = " *" if bool(test["mood_significant"]) else ""
        text += f"\nMood's median test p = {_p_text(test['mood_p'])}{star}"
    return text


def distribution_figure(
    per_image: pd.DataFrame, tests: pd.DataFrame, title: str, max_labels: int | None = None
) -> Figure:
    """Fig S2–S4 style: AUROC and Dice per image for both models, all images and per label
    (at most ``max_labels`` of them: :func:`synergyseg.showcase.labels_shown`)."""
    labels = labels_shown(per_image, max_labels, "distributions")
    groups = [("all test images", per_image)] + [
        (f"label: {label}", per_image[per_image["label"].astype(str) == label]) for label in labels
    ]
    fig = new_figure(7.6, 2.4 * len(groups) + 0.7)
    axes = fig.subplots(len(groups), len(SHOWN_METRICS), squeeze=False)
    for r, (name, frame) in enumerate(groups):
        for c, metric in enumerate(SHOWN_METRICS):
            test = tests.loc[tests["metric"] == metric].iloc[0] if r == 0 else None
            summary = _histogram(axes[r, c], frame, metric, test)
            axes[r, c].set_title(f"{METRIC_NAMES[metric]}, {name}\n{summary}")
    handles = [Patch(color=INIT_COLOURS[i], label=INIT_NAMES[i]) for i in ("lmi", "tii")]
    handles.append(Line2D([], [], color="0.3", ls="--", label="median"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    fig.suptitle(title)
    return fig

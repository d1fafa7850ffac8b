"""Line plots: training curves per regime, and the depletion plot (Table 3 as a picture)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from synergyseg.errors import InputDataError
from synergyseg.figures.style import INIT_COLOURS, INIT_NAMES, METRIC_NAMES, new_figure

HISTORY_COLUMNS = ["epoch", "train_loss", "monitor_loss"]
HISTORY_PATH = re.compile(r"(?P<regime>[^/]+)/(?P<init>tii|lmi)/rep(?P<rep>\d+)\.history\.csv$")


def histories(history_csvs: Sequence[str | Path]) -> pd.DataFrame:
    """Long table: regime, init, rep, epoch, train_loss, monitor_loss of every training
    history named ``…/<regime>/<init>/rep<k>.history.csv`` (written beside each checkpoint)."""
    frames = []
    for path in history_csvs:
        match = HISTORY_PATH.search(Path(path).as_posix())
        if match is None:
            raise InputDataError(path, "is not named <regime>/<init>/rep<k>.history.csv")
        frame = pd.read_csv(path)
        missing = sorted(set(HISTORY_COLUMNS) - set(frame.columns))
        if missing:
            raise InputDataError(path, f"is not a training history (lacks {missing})")
        frame = frame[HISTORY_COLUMNS]
        frame.insert(0, "rep", int(match["rep"]))
        frame.insert(0, "init", match["init"])
        frame.insert(0, "regime", match["regime"])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def training_figure(history: pd.DataFrame, regimes: Sequence[str], title: str) -> Figure:
    """Loss per epoch, one panel per regime: every replicate of both inits, training loss
    solid and the loss of the fixed monitoring sample (in eval mode) dashed."""
    n_cols = min(len(regimes), 3)
    n_rows = math.ceil(len(regimes) / n_cols)
    fig = new_figure(2.6 * n_cols + 0.3, 2.2 * n_rows + 0.8)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharey=True)
    for ax, regime in zip(axes.flat, regimes, strict=False):
        of_regime = history[history["regime"] == regime]
        for (init, _), run in of_regime.groupby(["init", "rep"]):
            colour = INIT_COLOURS[init]
            ax.plot(run["epoch"], run["train_loss"], color=colour, linewidth=0.9, alpha=0.8)
            ax.plot(run["epoch"], run["monitor_loss"], color=colour, linewidth=0.9, ls="--")
        ax.set_title(regime)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss")
    for ax in list(axes.flat)[len(regimes) :]:
        ax.set_axis_off()
    n_reps = history.groupby(["regime", "init"])["rep"].nunique().max()
    handles = [
        Line2D([], [], color=INIT_COLOURS[i], label=f"{INIT_NAMES[i]} ({n_reps} replicates)")
        for i in ("lmi", "tii")
    ]
    handles += [
        Line2D([], [], color="0.3", label="training loss"),
        Line2D([], [], color="0.3", ls="--", label="monitoring sample (eval mode)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(title)
    return fig


def depletion_figure(
    tests: Mapping[int, pd.DataFrame], title: str, metrics: Sequence[str] = tuple(METRIC_NAMES)
) -> Figure:
    """Median per-image metric of LMI and TII against the training share (%): Table 3 as a
    picture. ``tests`` maps the training share to that regime's ``tests.csv``; a * above a
    share means Mood's test is significant there, a ring (†) that the model is ahead by more
    than the practical difference."""
    shares = sorted(tests)
    fig = new_figure(2.3 * len(metrics) + 0.3, 2.9)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        rows = [tests[s].loc[tests[s]["metric"] == metric].iloc[0] for s in shares]
        for init in ("lmi", "tii"):
            medians = [r[f"{init}_median"] for r in rows]
            ax.plot(shares, medians, color=INIT_COLOURS[init], marker="o", markersize=3)
            for share, r, median in zip(shares, rows, medians, strict=True):
                if r["dagger_median"] == init:
                    ax.plot(share, median, "o", ms=8, mfc="none", mec=INIT_COLOURS[init])
        for share, r in zip(shares, rows, strict=True):
            if bool(r["mood_significant"]):
                top = max(r["lmi_median"], r["tii_median"])
                ax.annotate(
                    "*", (share, top), textcoords="offset points", xytext=(0, 4), ha="center"
                )
        ax.set_title(METRIC_NAMES[metric])
        ax.set_xlabel("training share (%)")
        ax.set_xticks(shares)
        ax.margins(x=0.1, y=0.2)
    axes[0].set_ylabel("median over test images")
    handles = [
        Line2D([], [], color=INIT_COLOURS[i], marker="o", ms=3, label=INIT_NAMES[i])
        for i in ("lmi", "tii")
    ]
    handles += [
        Line2D(
            [],
            [],
            ls="none",
            marker="o",
            ms=8,
            mfc="none",
            mec="0.3",
            label="† ahead by more than the practical difference",
        ),
        Line2D(
            [], [], ls="none", marker="$*$", color="0.3", label="* Mood's median test significant"
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(title)
    return fig

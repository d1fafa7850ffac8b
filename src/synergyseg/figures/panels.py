"""Image panels: Fig 2–5 style segmentation and Grad-CAM panels, Fig 6 style union/intersection.

Rows are the images chosen by :mod:`synergyseg.showcase`; each model's mask is the
intersection of its replicate masks (eq. 2) and each heat map the mean of its replicate
Grad-CAM maps (eq. 3), as stored by :func:`synergyseg.cam.explain_images`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from synergyseg.cam_files import CLASSES, chosen_test_rows, read_cams
from synergyseg.errors import InputDataError
from synergyseg.figures.overlay import (
    CAM_COLOURMAP,
    heat_overlay,
    overlay_legend,
    show_outcomes,
)
from synergyseg.figures.style import INIT_NAMES, new_figure
from synergyseg.metrics import binary_mask_metrics
from synergyseg.store import SliceStore, manifest_rows

CELL_WIDTH = 1.3  # inches per image column
ROW_LABEL_WIDTH = 1.5
HEADER_HEIGHT = 0.5  # two-line column titles
ROW_EXTRA = 0.25  # room under each row for the Dice labels
FOOTER_HEIGHT = 0.45  # legend
COLOURBAR_WIDTH = 0.7


ROLE_NAMES = {
    "tii_ahead": "TII ahead",
    "lmi_ahead": "LMI ahead",
    "typical": "typical",
    "tii_best": "TII best",
    "tii_worst": "TII worst",
    "lmi_best": "LMI best",
    "lmi_worst": "LMI worst",
}


@dataclass
class Showcase:
    """Everything the image panels of one dataset show, in the order of the choice table."""

    dataset: str
    regime: str
    choice: pd.DataFrame
    images: np.ndarray  # (N, H, W, C) uint8
    truth: np.ndarray  # (N, H, W) bool
    masks: dict[str, np.ndarray]  # init → (N, H, W) bool, eq. 2
    cams: dict[str, np.ndarray]  # init → (N, 2, H, W) in [0, 1], eq. 3
    replicates: int
    layer: str

    @property
    def aspect(self) -> float:
        return self.images.shape[1] / self.images.shape[2]

    def row_labels(self) -> list[str]:
        """Number, clinical label, why the image was chosen and its Δ (of the masks shown)."""
        labels = []
        for i, row in enumerate(self.choice.itertuples(index=False), start=1):
            roles = ", ".join(ROLE_NAMES.get(r, r) for r in row.role.split("+"))
            labels.append(f"{i}. {row.label}\n{roles}\nΔ {row.metric} {row.delta:+.3f}")
        return labels

    def notes(self, mask: np.ndarray) -> list[str]:
        """Under each overlay: the Dice of the displayed mask, or its false-positive pixel
        count where the ground truth is empty and Dice is undefined."""
        scores = binary_mask_metrics(mask, self.truth)
        return [
            f"FP {fp} px (no GT)" if np.isnan(dice) else f"Dice {dice:.3f}"
            for dice, fp in zip(scores["dice"], scores["fp"], strict=True)
        ]


def load_showcase(
    dataset: str,
    regime: str,
    images_csv: str | Path,
    split_csv: str | Path,
    store_dir: str | Path,
    cam_files: Mapping[str, str | Path],
) -> Showcase:
    """Read the chosen images, their ground truth and both models' Grad-CAM files."""
    choice, rows = chosen_test_rows(split_csv, images_csv)
    store = SliceStore(store_dir)
    images, truth = store.images(manifest_rows(rows)), store.masks(manifest_rows(rows))
    masks, cams, replicates, layer = {}, {}, 0, ""
    for init, path in cam_files.items():
        data = read_cams(path)
        if data["slice_ids"].tolist() != choice["slice_id"].tolist():
            raise InputDataError(path, f"holds other images than {images_csv}")
        if data["mask"].shape != truth.shape:
            raise InputDataError(path, f"masks {data['mask'].shape} differ from the slices")
        masks[init], cams[init] = data["mask"].astype(bool), data["cam"]
        replicates, layer = int(data["replicates"]), str(data["layer"])
    return Showcase(
        dataset,
        regime,
        choice,
        images,
        truth.astype(bool),
        masks,
        cams,
        replicates,
        layer,
    )


def panel_size(n_rows: int, n_cols: int, aspect: float, colourbar: bool = False):
    """(width, height) in inches of an image panel: fixed cells, so PNG size = size · dpi."""
    width = ROW_LABEL_WIDTH + n_cols * CELL_WIDTH + (COLOURBAR_WIDTH if colourbar else 0)
    height = HEADER_HEIGHT + n_rows * (CELL_WIDTH * aspect + ROW_EXTRA) + FOOTER_HEIGHT
    return width, height


def _show(ax, picture, title: str | None = None, note: str | None = None, **kwargs) -> None:
    ax.imshow(picture, **kwargs)  # resampled as save_figure says, per output format
    _frame(ax, title, note)


def _frame(ax, title: str | None = None, note: str | None = None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    if note:
        ax.set_xlabel(note)


def _image(picture: np.ndarray):
    return (
        (picture[..., 0], {"cmap": "gray", "vmin": 0, "vmax": 255})
        if picture.shape[2] == 1
        else (picture, {})
    )


def _mask(mask: np.ndarray):
    return mask, {"cmap": "gray", "vmin": 0, "vmax": 1}


def _grid(fig: Figure, showcase: Showcase, titles: list[str]):
    axes = fig.subplots(len(showcase.choice), len(titles), squeeze=False)
    for col, title in enumerate(titles):
        axes[0, col].set_title(title)
    for row, label in enumerate(showcase.row_labels()):
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center")
    return axes


def _mask_panel(showcase: Showcase, columns, title: str) -> Figure:
    """Input, GT, then one column per (title, "mask" | "overlay", mask stack)."""
    fig = new_figure(*panel_size(len(showcase.choice), 2 + len(columns), showcase.aspect))
    names = ["input", "GT"] + [name for name, _, _ in columns]
    titles = [f"{letter}\n{name}" for letter, name in zip("ABCDEFGHIJ", names, strict=False)]
    axes = _grid(fig, showcase, titles)
    notes = [showcase.notes(stack) if kind == "overlay" else None for _, kind, stack in columns]
    for row in range(len(showcase.choice)):
        picture, kwargs = _image(showcase.images[row])
        _show(axes[row, 0], picture, **kwargs)
        truth, kwargs = _mask(showcase.truth[row])
        _show(axes[row, 1], truth, **kwargs)
        for col, (_, kind, stack) in enumerate(columns, start=2):
            if kind == "mask":
                mask, kwargs = _mask(stack[row])
                _show(axes[row, col], mask, **kwargs)
            else:
                show_outcomes(axes[row, col], showcase.truth[row], stack[row])
                _frame(axes[row, col], note=notes[col - 2][row])
    fig.legend(handles=overlay_legend(), loc="outside lower center", ncols=4, frameon=False)
    fig.suptitle(title)
    return fig


def segmentation_panel(showcase: Showcase) -> Figure:
    """Fig 2–5 panel (i): input, GT, LMI mask, LMI overlay, TII mask, TII overlay."""
    columns = []
    for init in ("lmi", "tii"):
        name, stack = INIT_NAMES[init], showcase.masks[init]
        columns += [(f"{name} mask", "mask", stack), (f"{name} overlay", "overlay", stack)]
    title = (
        f"{showcase.dataset}, {showcase.regime} test images: masks are the intersection of "
        f"{showcase.replicates} replicates"
    )
    return _mask_panel(showcase, columns, title)


def synergy_panel(showcase: Showcase) -> Figure:
    """Fig 6: input, GT, LMI overlay, TII overlay, union mask + overlay, intersection + overlay."""
    lmi, tii = showcase.masks["lmi"], showcase.masks["tii"]
    columns = [("LMI overlay", "overlay", lmi), ("TII overlay", "overlay", tii)]
    for symbol, stack in (("∪", lmi | tii), ("∩", lmi & tii)):
        columns += [(f"LMI {symbol} TII", "mask", stack), (f"{symbol} overlay", "overlay", stack)]
    title = (
        f"{showcase.dataset}, {showcase.regime}: union and intersection of the LMI and TII masks"
    )
    return _mask_panel(showcase, columns, title)


def gradcam_panel(showcase: Showcase) -> Figure:
    """Fig 2–5 panel (ii): input with the GT outline, then class 0/1 maps of LMI and TII."""
    heads = [(init, c) for init in ("lmi", "tii") for c in CLASSES]
    titles = ["A\ninput + GT"]
    titles += [f"{'BCDE'[i]}\n{INIT_NAMES[init]} class {c}" for i, (init, c) in enumerate(heads)]
    n_rows = len(showcase.choice)
    fig = new_figure(*panel_size(n_rows, len(titles), showcase.aspect, colourbar=True))
    axes = _grid(fig, showcase, titles)
    for row in range(n_rows):
        picture, kwargs = _image(showcase.images[row])
        _show(axes[row, 0], picture, **kwargs)
        axes[row, 0].contour(showcase.truth[row], levels=[0.5], colors="lime", linewidths=0.8)
        for col, (init, c) in enumerate(heads, start=1):
            cam = showcase.cams[init][row, c]
            note = "empty map" if not cam.any() else None
            _show(axes[row, col], heat_overlay(showcase.images[row], cam), note=note)
    bar = fig.colorbar(
        ScalarMappable(Normalize(0, 1), CAM_COLOURMAP), ax=axes, location="right", shrink=0.6
    )
    bar.set_label(f"Grad-CAM at {showcase.layer}, mean of {showcase.replicates} replicates")
    fig.suptitle(
        f"{showcase.dataset}, {showcase.regime}: Grad-CAM per target class "
        "(0 = background, 1 = foreground)"
    )
    return fig

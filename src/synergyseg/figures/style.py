"""Shared look and output of every figure: colours, fonts, atomic PNG + PDF writing."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from synergyseg.atomic import atomic_path  # noqa: E402
from synergyseg.figures.overlay import overlay_colours, shrunken_overlay  # noqa: E402

# The paper's figures draw TII in brown and LMI in blue.
INIT_COLOURS = {"lmi": "#1f77b4", "tii": "#8c564b"}
INIT_NAMES = {"lmi": "LMI", "tii": "TII"}
METRIC_NAMES = {
    "auroc": "AUROC",
    "dice": "Dice",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
}
RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "figure.titlesize": 10,
    "pdf.fonttype": 42,  # editable text in the PDF
    "svg.fonttype": "none",
}
# Set for the process, not in a context around plt.figure(): titles, labels and legends read
# the fonts when they are made, after new_figure has returned. Only figure code imports this.
plt.rcParams.update(RC)

# How images are resampled to the canvas. The PDF embeds every image unresampled, each pixel
# as computed. In the PNG (the report's preview at `figures.dpi`, where a 512-pixel image gets
# a 194-pixel cell) an image shrunk on the canvas is filtered ("antialiased"), so a line one
# pixel wide stays visible along its whole length instead of being kept or dropped by pixel
# phase, and an enlarged one is drawn with sharp pixels ("nearest"); outcome overlays are
# shrunk by overlay.shrunken_overlay instead, as filtering would invent colours.
PDF_INTERPOLATION = "none"


def new_figure(width: float, height: float) -> Figure:
    """A figure of exactly ``width`` × ``height`` inches (no tight bounding box: the pixel
    size of the PNG is width·dpi × height·dpi, whatever the content)."""
    return plt.figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, png: str | Path, pdf: str | Path, dpi: int) -> None:
    """Write ``fig`` as PNG and PDF, each atomically, then free it.

    The constrained layout is solved once, while the PNG is drawn, and kept for the PDF:
    solving it is a third of a panel's rendering time, and the PDF's own solution would only
    differ by text-extent rounding at 72 dpi (under 0.3 % of the figure size).
    """
    images = [image for ax in fig.axes for image in ax.get_images()]
    try:
        fig.set_dpi(dpi)
        if images:  # solve the layout first: how many pixels each image gets
            fig.draw_without_rendering()
            fig.set_layout_engine("none")
        for path, fmt in ((png, "png"), (pdf, "pdf")):
            for image in images:
                _prepare(image, fmt)
            with atomic_path(path, suffix=f".{fmt}") as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_metadata(fmt))
            fig.set_layout_engine("none")  # the positions just solved stay
    finally:
        plt.close(fig)


def save_panel(fig: Figure, outputs, name: str, dpi: int) -> None:
    """Write ``fig`` to a figure rule's ``{name}_png`` and ``{name}_pdf`` outputs (the names
    rules/common.smk's ``figure_files`` gives them)."""
    save_figure(fig, outputs[f"{name}_png"], outputs[f"{name}_pdf"], dpi)


def _prepare(image, fmt: str) -> None:
    """Set an image's resampling for ``fmt``; an outcome overlay (overlay.show_outcomes) is
    shrunk to its pixels on the PNG canvas by its own rule and drawn 1:1."""
    codes = getattr(image, "outcome_codes", None)  # set by overlay.show_outcomes
    if fmt != "png":
        if codes is not None:
            image.set_data(overlay_colours(codes))
        image.set_interpolation(PDF_INTERPOLATION)
        return
    box = image.get_window_extent()
    height, width = int(box.height), int(box.width)
    if codes is not None:
        image.set_data(shrunken_overlay(codes, height, width))
        image.set_interpolation("nearest")
    else:
        rows, cols = image.get_array().shape[:2]
        image.set_interpolation("antialiased" if rows > height or cols > width else "nearest")


def _metadata(fmt: str) -> dict:
    """No creation dates, so re-rendering unchanged inputs gives identical files."""
    if fmt == "png":
        return {"Software": None}
    return {"CreationDate": None, "Creator": None, "Producer": None}

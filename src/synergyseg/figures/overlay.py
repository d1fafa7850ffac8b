"""Pictures of masks: the TP/TN/FP/FN overlay and the Grad-CAM heat map over an image."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.patches import Patch

# The paper's overlay colours (RGB).
OVERLAY_COLOURS = {
    "TP": (0, 255, 0),  # green
    "TN": (0, 0, 0),  # black
    "FP": (255, 0, 0),  # red
    "FN": (255, 255, 0),  # yellow
}
CAM_COLOURMAP = "jet"  # deep red = most attention, deep blue = least, as in the paper


# Outcome codes (the values of :func:`outcomes`).
OUTCOMES = ("TN", "TP", "FP", "FN")
_PALETTE = np.array([OVERLAY_COLOURS[name] for name in OUTCOMES], dtype=np.uint8)


def outcomes(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """uint8 (H, W) index into :data:`OUTCOMES` of each pixel's outcome."""
    truth = np.asarray(truth).astype(bool)
    predicted = np.asarray(predicted).astype(bool)
    if truth.shape != predicted.shape:
        raise ValueError(f"ground truth {truth.shape} and mask {predicted.shape} differ in shape")
    return np.where(predicted, np.where(truth, 1, 2), np.where(truth, 3, 0)).astype(np.uint8)


def overlay_colours(codes: np.ndarray) -> np.ndarray:
    """RGB uint8 image of outcome ``codes`` (:func:`outcomes`)."""
    return _PALETTE[codes]


def shrunken_overlay(codes: np.ndarray, height: int, width: int) -> np.ndarray:
    """RGB overlay of outcome ``codes`` at most ``height`` × ``width`` pixels.

    Each output pixel covers a block of image pixels. A block holding any error shows the
    error with more pixels there (FP or FN), a block without one TP or TN, whichever it holds
    more of; ties alternate in a checkerboard, so neither kind gains. Area averaging would mix
    red and green into the yellow of a false negative, and sampling drops an error one pixel
    wide wherever it falls between samples; this keeps every error visible, in its own colour
    and without favouring either kind, at the cost of drawing thin ones one screen pixel wide.
    """
    rows, cols = _block_starts(codes.shape[0], height), _block_starts(codes.shape[1], width)
    tn, tp, fp, fn = (
        np.add.reduceat(np.add.reduceat((codes == k).astype(np.int32), rows, 0), cols, 1)
        for k in range(len(OUTCOMES))
    )
    even = np.add.outer(np.arange(len(rows)), np.arange(len(cols))) % 2 == 0
    error = np.where((fp > fn) | ((fp == fn) & even), 2, 3)
    correct = np.where((tp > tn) | ((tp == tn) & even), 1, 0)
    return _PALETTE[np.where(fp + fn > 0, error, correct).astype(np.uint8)]


def _block_starts(n: int, size: int) -> np.ndarray:
    """First image pixel of each of ``size`` blocks tiling ``n`` pixels (every pixel, unpooled,
    when ``size`` ≥ ``n``)."""
    if size >= n:
        return np.arange(n)
    return np.floor(np.arange(max(size, 1)) * n / max(size, 1)).astype(np.intp)


def show_outcomes(ax, truth: np.ndarray, predicted: np.ndarray):
    """Draw the overlay in ``ax``, keeping its outcome codes on the image so that
    :func:`synergyseg.figures.style.save_figure` can shrink it to the canvas without losing
    errors (see :func:`shrunken_overlay`)."""
    codes = outcomes(truth, predicted)
    image = ax.imshow(overlay_colours(codes))
    image.outcome_codes = codes
    return image


def overlay_legend() -> list[Patch]:
    """Legend handles for :func:`overlay` (TN gets a grey edge so black shows on white)."""
    names = {"TP": "true positive", "TN": "true negative", "FP": "false positive"}
    names["FN"] = "false negative"
    return [
        Patch(facecolor=np.array(rgb) / 255, edgecolor="0.5", label=f"{key}: {names[key]}")
        for key, rgb in OVERLAY_COLOURS.items()
    ]


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1] from a gray (H, W) / (H, W, 1) or RGB (H, W, 3) uint8 image."""
    image = np.asarray(image, dtype=np.float32) / 255.0
    if image.ndim == 3:
        image = image.mean(axis=2) if image.shape[2] == 3 else image[..., 0]
    return image


def heat_overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB float image: the Grad-CAM map (in [0, 1]) in the jet colour map over the gray image."""
    if cam.shape != image.shape[:2]:
        raise ValueError(f"Grad-CAM map {cam.shape} and image {image.shape[:2]} differ in shape")
    heat = matplotlib.colormaps[CAM_COLOURMAP](np.clip(cam, 0, 1))[..., :3]
    gray = to_gray(image)[..., None]
    return (1 - alpha) * gray + alpha * heat

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


def overlay(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """RGB uint8 image (H, W, 3) colouring each pixel by its outcome against the ground truth."""
    truth = np.asarray(truth).astype(bool)
    predicted = np.asarray(predicted).astype(bool)
    if truth.shape != predicted.shape:
        raise ValueError(f"ground truth {truth.shape} and mask {predicted.shape} differ in shape")
    out = np.zeros((*truth.shape, 3), dtype=np.uint8)
    out[truth & predicted] = OVERLAY_COLOURS["TP"]
    out[~truth & predicted] = OVERLAY_COLOURS["FP"]
    out[truth & ~predicted] = OVERLAY_COLOURS["FN"]
    return out  # TN stays black


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

"""The one mask rule every stage shares: P(class 1) stored as uint8, foreground where >= 128.

Predictions store round(255 · P) (:func:`synergyseg.preprocess.foreground_probability`); a
pixel is foreground when that value is at least 128, i.e. P >= 0.5. Metrics, synergy, Grad-CAM
("the pixels the model assigns to class 1") and the figure panels all use this rule, and eq. 2
turns a model's replicate masks into the one it displays. numpy only: scoring needs no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

THRESHOLD = 128  # uint8 value of P = 0.5


def replicate_intersection(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Eq. 2: the displayed mask of a model is the intersection of its R replicate masks."""
    return np.logical_and.reduce(np.asarray(masks, dtype=bool), axis=0)

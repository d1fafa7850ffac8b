"""Gleason2019 rater consensus: combine the available pathologists' maps, then binarise.

Each rater map holds Gleason labels {0, 1, 3, 4, 5} (0 background, 1 benign, 3–5 grades) and
the value 6, an annotation mistake that the challenge organisers define as benign (→ 1).
Consensus is formed on the graded labels with SimpleITK (majority vote or STAPLE), then
tumour = grade 3, 4 or 5.

Tie rule (pixels the vote leaves undecided): such a pixel is tumour when *more than half* of
the raters graded it 3–5, otherwise not. Two raters saying 3 and 4 therefore give tumour;
one saying 0 and one saying 3 give background.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

GLEASON_VALUES = frozenset({0, 1, 3, 4, 5, 6})
TUMOUR_GRADES = (3, 4, 5)
UNDECIDED = 255
METHODS = ("majority", "staple")


def clean_rater_map(label_map: np.ndarray) -> np.ndarray:
    """Map the annotation-mistake value 6 to benign (1)."""
    cleaned = label_map.astype(np.uint8, copy=True)
    cleaned[cleaned == 6] = 1
    return cleaned


def consensus_tumour_mask(maps: Sequence[np.ndarray], method: str = "majority") -> np.ndarray:
    """Binary tumour mask {0, 1} from one or more cleaned rater maps of equal shape."""
    if method not in METHODS:
        raise ValueError(f"unknown consensus method {method!r}; choose one of {METHODS}")
    if not maps:
        raise ValueError("consensus needs at least one rater map")
    shape = maps[0].shape
    if any(m.shape != shape for m in maps):
        raise ValueError(f"rater maps differ in shape: {[m.shape for m in maps]}")
    tumour_votes = np.sum([np.isin(m, TUMOUR_GRADES) for m in maps], axis=0)
    if len(maps) == 1:
        return (tumour_votes > 0).astype(np.uint8)
    images = [sitk.GetImageFromArray(np.ascontiguousarray(m, dtype=np.uint8)) for m in maps]
    if method == "majority":
        fused = sitk.LabelVoting(images, UNDECIDED)
    else:
        fused = sitk.MultiLabelSTAPLE(images, UNDECIDED)
    labels = sitk.GetArrayFromImage(fused)
    tumour = np.isin(labels, TUMOUR_GRADES)
    undecided = labels == UNDECIDED
    tumour[undecided] = tumour_votes[undecided] * 2 > len(maps)
    return tumour.astype(np.uint8)

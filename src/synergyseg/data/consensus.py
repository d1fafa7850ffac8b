"""Gleason2019 rater consensus: combine the available pathologists' maps, then binarise.

Each rater map holds Gleason labels {0, 1, 3, 4, 5} (0 background, 1 benign, 3–5 grades) and
the value 6, an annotation mistake that the challenge organisers define as benign (→ 1).
Each rater's map is binarised first (tumour = grade 3, 4 or 5, the study's target), then the
binary maps are fused (majority vote, or SimpleITK's STAPLE). Fusing the graded labels
instead would split the tumour vote between grades: raters saying 3, 4, 5, 1, 1 would give
benign (1 is the most frequent label), although three of five call the pixel tumour, and
pathologists disagree on the grade far more often than on tumour.

Tie rule (pixels the fusion leaves undecided): such a pixel is tumour when *more than half*
of the raters graded it 3–5, otherwise not: one rater saying 0 and one saying 3 give
background.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

GLEASON_VALUES = frozenset({0, 1, 3, 4, 5, 6})
TUMOUR_GRADES = (3, 4, 5)
UNDECIDED = 255
METHODS = ("majority", "staple")


def tumour_map(label_map: np.ndarray) -> np.ndarray:
    """One rater's binary tumour map: grade 3, 4 or 5 (the mistake value 6 is benign, so it
    needs no cleaning first)."""
    return np.isin(label_map, TUMOUR_GRADES)


def consensus_tumour_mask(
    tumour_maps: Sequence[np.ndarray], method: str = "majority"
) -> np.ndarray:
    """Binary tumour mask {0, 1} from one or more raters' binary tumour maps of equal shape
    (:func:`tumour_map`).

    ``majority``: tumour where more than half of the raters say so. On binary maps this is
    exactly SimpleITK's ``LabelVoting`` with the tie rule, counted here in one byte per pixel
    instead of a copy of every map. ``staple``: SimpleITK's ``MultiLabelSTAPLE``, which weighs
    each rater by their estimated agreement with the others.
    """
    if method not in METHODS:
        raise ValueError(f"unknown consensus method {method!r}; choose one of {METHODS}")
    if not tumour_maps:
        raise ValueError("consensus needs at least one rater map")
    shape = tumour_maps[0].shape
    if any(m.shape != shape for m in tumour_maps):
        raise ValueError(f"rater maps differ in shape: {[m.shape for m in tumour_maps]}")
    votes = np.zeros(shape, np.uint8)
    for rater in tumour_maps:
        votes += rater.astype(bool)
    majority = votes.astype(np.uint16) * 2 > len(tumour_maps)
    if method == "majority" or len(tumour_maps) == 1:
        return majority.astype(np.uint8)
    fused = sitk.MultiLabelSTAPLE(
        [sitk.GetImageFromArray(m.astype(np.uint8)) for m in tumour_maps], UNDECIDED
    )
    labels = sitk.GetArrayFromImage(fused)
    tumour = labels == 1
    undecided = labels == UNDECIDED
    tumour[undecided] = majority[undecided]
    return tumour.astype(np.uint8)

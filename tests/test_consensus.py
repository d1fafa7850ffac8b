"""Gleason consensus on hand-made rater maps."""

from __future__ import annotations

import numpy as np
import pytest

from synergyseg.data.consensus import consensus_tumour_mask, tumour_map

# three raters on a 2x4 core; columns: clear tumour, 2-of-3 tumour, 1-of-3 tumour, graded 3/4/5
R1 = np.array([[3, 3, 3, 3], [0, 1, 1, 1]], dtype=np.uint8)
R2 = np.array([[3, 4, 1, 4], [0, 1, 6, 1]], dtype=np.uint8)
R3 = np.array([[4, 1, 1, 5], [0, 1, 1, 3]], dtype=np.uint8)


def test_majority_vote_on_three_raters_by_hand():
    mask = consensus_tumour_mask([tumour_map(m) for m in (R1, R2, R3)], "majority")
    # col 0: 3,3,4 → majority 3 → tumour; col 1: 3,4,1 → undecided, 2 of 3 graded ≥3 → tumour
    # col 2: 3,1,1 → 1 → no; col 3: 3,4,5 → undecided, 3 of 3 ≥3 → tumour
    # row 1: (0,0,0) no; (1,1,1) no; (1,6→1,1) no; (1,1,3) → 1 → no
    np.testing.assert_array_equal(mask, [[1, 1, 0, 1], [0, 0, 0, 0]])


def test_raters_who_disagree_on_the_grade_still_outvote_benign():
    """Five raters: 3, 4, 5, 1, 1. Three of five call the pixel tumour; voting on the grades
    would give benign (1 is the most frequent label)."""
    raters = [np.array([[g, 0]], dtype=np.uint8) for g in (3, 4, 5, 1, 1)]
    raters[0][0, 1] = 3  # and a pixel only one of five calls tumour
    raters = [tumour_map(r) for r in raters]
    for method in ("majority", "staple"):
        np.testing.assert_array_equal(consensus_tumour_mask(raters, method), [[1, 0]], method)


def test_staple_agrees_on_unanimous_pixels():
    mask = consensus_tumour_mask([tumour_map(m) for m in (R1, R2, R3)], "staple")
    assert mask[0, 0] == 1 and mask[1, 0] == 0 and mask[1, 1] == 0


def test_value_6_is_benign():
    np.testing.assert_array_equal(tumour_map(np.array([6, 3, 0], dtype=np.uint8)), [0, 1, 0])


def test_two_raters_tie_rule():
    a = np.array([[0, 3]], dtype=np.uint8)
    b = np.array([[3, 4]], dtype=np.uint8)
    # 0 vs 3: one of two → not tumour; 3 vs 4: both graded → tumour
    np.testing.assert_array_equal(consensus_tumour_mask([tumour_map(a), tumour_map(b)]), [[0, 1]])


def test_single_rater_is_taken_as_is():
    np.testing.assert_array_equal(
        consensus_tumour_mask([tumour_map(R2)]), [[1, 1, 0, 1], [0, 0, 0, 0]]
    )


def test_unknown_method_and_shape_mismatch_are_errors():
    with pytest.raises(ValueError, match="unknown consensus method"):
        consensus_tumour_mask([R1], "vote")
    with pytest.raises(ValueError, match="differ in shape"):
        consensus_tumour_mask([R1, R1[:, :2]])


@pytest.mark.parametrize("raters", [2, 3, 4, 5, 6])
def test_majority_equals_simpleitk_label_voting_with_the_tie_rule(raters, rng):
    import SimpleITK as sitk

    maps = [rng.random((12, 9)) < 0.5 for _ in range(raters)]
    voted = sitk.GetArrayFromImage(
        sitk.LabelVoting([sitk.GetImageFromArray(m.astype(np.uint8)) for m in maps], 255)
    )
    expected = np.where(voted == 255, 0, voted)  # undecided: a tie, so not more than half
    np.testing.assert_array_equal(consensus_tumour_mask(maps, "majority"), expected)

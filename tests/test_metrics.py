"""Per-image metrics against scikit-learn and hand-worked edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from synergyseg.metrics import binary_mask_metrics, image_metrics


def random_predictions(rng, n=20, size=32):
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        r0, c0 = rng.integers(0, size // 2, 2)
        masks[i, r0 : r0 + rng.integers(2, size // 2), c0 : c0 + rng.integers(2, size // 2)] = True
    noise = rng.normal(0, 60, masks.shape)
    probs = np.clip(masks * 160 + 50 + noise, 0, 255).astype(np.uint8)
    return probs, masks


def test_auroc_matches_sklearn_on_uint8_scores(rng):
    probs, masks = random_predictions(rng)
    ours = image_metrics(probs, masks)["auroc"].to_numpy()
    ref = [roc_auc_score(m.ravel(), p.ravel()) for p, m in zip(probs, masks, strict=True)]
    np.testing.assert_allclose(ours, ref, atol=1e-12, rtol=0)


def test_threshold_metrics_match_sklearn(rng):
    probs, masks = random_predictions(rng)
    table = image_metrics(probs, masks)
    for i, (p, m) in enumerate(zip(probs, masks, strict=True)):
        predicted = p.ravel() >= 128  # P >= 0.5
        assert table["dice"][i] == pytest.approx(f1_score(m.ravel(), predicted), abs=1e-12)
        assert table["sensitivity"][i] == pytest.approx(
            recall_score(m.ravel(), predicted), abs=1e-12
        )
        assert table["precision"][i] == pytest.approx(
            precision_score(m.ravel(), predicted), abs=1e-12
        )
        specificity = recall_score(~m.ravel(), ~predicted)
        assert table["specificity"][i] == pytest.approx(specificity, abs=1e-12)
        assert table.loc[i, ["tp", "fp", "tn", "fn"]].sum() == m.size


def test_edge_cases_are_undefined_not_zero_or_one():
    empty = np.zeros((1, 4, 4), dtype=bool)
    full = np.ones((1, 4, 4), dtype=bool)
    single = empty.copy()
    single[0, 1, 2] = True
    low = np.zeros((1, 4, 4), dtype=np.uint8)
    high = np.full((1, 4, 4), 255, dtype=np.uint8)

    none_found = image_metrics(low, empty).iloc[0]  # empty reference, nothing predicted
    assert np.isnan(none_found[["auroc", "dice", "sensitivity", "precision"]].astype(float)).all()
    assert none_found["specificity"] == 1.0

    all_fg = image_metrics(high, full).iloc[0]  # no background in the reference
    assert np.isnan(all_fg["auroc"]) and np.isnan(all_fg["specificity"])
    assert all_fg["dice"] == 1.0 and all_fg["sensitivity"] == 1.0

    probs = low.copy()
    probs[0, 1, 2] = 200  # the single pixel found, with the highest score
    one = image_metrics(probs, single).iloc[0]
    assert one["auroc"] == 1.0 and one["dice"] == 1.0 and one["specificity"] == 1.0
    missed = image_metrics(low, single).iloc[0]  # all scores tied: AUROC one half
    assert missed["auroc"] == 0.5 and missed["dice"] == 0.0 and np.isnan(missed["precision"])


def test_threshold_is_p_half():
    mask = np.zeros((1, 1, 2), dtype=bool)
    mask[0, 0, 0] = True
    table = image_metrics(np.array([[[128, 127]]], dtype=np.uint8), mask)
    assert (table.loc[0, "tp"], table.loc[0, "tn"]) == (1, 1)


def test_bad_inputs_are_refused():
    with pytest.raises(TypeError, match="uint8"):
        image_metrics(np.zeros((1, 2, 2)), np.zeros((1, 2, 2), bool))
    with pytest.raises(ValueError, match="differ in shape"):
        image_metrics(np.zeros((1, 2, 2), np.uint8), np.zeros((1, 2, 3), bool))


def test_binary_masks_score_to_the_bit_as_maps_of_0_and_255(rng):
    """The synergy combinations are binary masks: their counts-only scoring must give exactly
    the table of the histogram path on the same masks as 0/255 maps, AUROC included, and the
    same undefined values (empty reference, all-reference, empty prediction)."""
    predicted = rng.random((40, 24, 20)) < 0.3
    truth = rng.random((40, 24, 20)) < rng.random((40, 1, 1))
    truth[0], truth[1], predicted[2] = False, True, False  # the undefined cases
    predicted[3], predicted[4] = truth[3], ~truth[4]  # perfect, and all wrong
    fast = binary_mask_metrics(predicted, truth)
    slow = image_metrics(predicted.astype(np.uint8) * np.uint8(255), truth)
    assert fast.equals(slow)  # same columns, dtypes and values, NaN where NaN
    assert np.isnan(fast.loc[0, ["auroc", "dice"]].to_numpy(float)).all()
    assert np.isnan(fast.loc[1, "specificity"]) and np.isnan(fast.loc[2, "precision"])
    assert fast.loc[3, "auroc"] == 1.0 and fast.loc[4, "auroc"] == 0.0
    pairs = zip(predicted[5:], truth[5:], strict=True)
    sklearn = [roc_auc_score(t.ravel(), p.ravel()) for p, t in pairs]
    np.testing.assert_allclose(fast["auroc"][5:], sklearn, rtol=0, atol=1e-12)

"""Union/intersection of TII and LMI masks on hand-made masks, and the regime scoring job
(metrics and synergy of every model, in blocks) against scoring everything at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synergyseg import scoring
from synergyseg.metrics import image_metrics
from synergyseg.predictions import PredictionWriter
from synergyseg.store import StoreWriter
from synergyseg.synergy import synergy_block, synergy_frame, synergy_summary


def test_union_finds_what_either_model_finds():
    truth = np.zeros((1, 4, 4), bool)
    truth[0, 0, :] = True  # 4 foreground pixels
    lmi = np.zeros((4, 4), bool)
    lmi[0, :2] = True  # finds the left half
    tii = np.zeros((4, 4), bool)
    tii[0, 2:] = True  # finds the right half
    tii_noisy = tii.copy()
    tii_noisy[3, 3] = True  # a second TII replicate with one false positive
    binary = {"lmi": np.stack([lmi, lmi])[:, None], "tii": np.stack([tii, tii_noisy])[:, None]}
    rows = pd.DataFrame({"slice_id": ["s1"], "label": ["l"]})
    table = synergy_frame(synergy_block(binary, truth), rows).set_index("combination")
    # eq. 2: the TII mask is the intersection of its replicates, so the false positive is gone
    assert table.loc["tii", "specificity"] == 1.0
    assert table.loc["lmi", "dice"] == pytest.approx(2 * 2 / (2 * 2 + 2))
    assert table.loc["union", "dice"] == 1.0 and table.loc["union", "sensitivity"] == 1.0
    assert table.loc["intersection", "sensitivity"] == 0.0
    # per replicate: rep 2's union has the false positive; median of the two replicates
    assert table.loc["union_per_rep", "specificity"] == pytest.approx((1.0 + 11 / 12) / 2)
    summary = synergy_summary(table.reset_index()).set_index(["metric", "combination"])
    assert summary.loc[("dice", "union"), "beats_both"] == 1
    assert summary.loc[("dice", "intersection"), "beats_both"] == 0


def test_a_model_that_finds_nothing_adds_no_synergy():
    """Replicate by replicate, LMI ∪ TII is TII itself when LMI finds nothing: it must not beat
    both models just because one TII replicate finds more than the intersection of all."""
    truth = np.zeros((1, 4, 4), bool)
    truth[0, :2, :] = True  # 8 foreground pixels
    rep1 = np.zeros((4, 4), bool)
    rep1[0, :] = True
    rep1[1, :2] = True  # 6 pixels
    rep2 = np.zeros((4, 4), bool)
    rep2[0, :] = True
    rep2[1, 2:] = True  # 6 pixels, 4 shared with rep1
    empty = np.zeros((4, 4), bool)
    binary = {"lmi": np.stack([empty, empty])[:, None], "tii": np.stack([rep1, rep2])[:, None]}
    rows = pd.DataFrame({"slice_id": ["s1"], "label": ["l"]})
    table = synergy_frame(synergy_block(binary, truth), rows).set_index("combination")
    # hand-worked: eq. 2 TII = 4 of 8 pixels (Dice 2·4/12); each replicate 6 of 8 (Dice 12/14)
    assert table.loc["tii", "dice"] == pytest.approx(8 / 12)
    assert table.loc["tii_per_rep", "dice"] == pytest.approx(12 / 14)
    assert table.loc["union_per_rep", "dice"] == pytest.approx(12 / 14)
    summary = synergy_summary(table.reset_index()).set_index(["metric", "combination"])
    for metric in ("dice", "sensitivity", "specificity"):
        for name in ("union", "union_per_rep", "intersection", "intersection_per_rep"):
            assert summary.loc[(metric, name), "beats_both"] == 0, (metric, name)
    assert pd.isna(summary.loc[("dice", "tii_per_rep"), "beats_both"])


def test_synergy_counts_print_as_whole_numbers():
    """Counts beside undefined cells (the single models) stay integers in the Markdown table:
    a float column would print 12,345 images as 1.234e+04."""
    from synergyseg.label_tables import markdown

    summary = pd.DataFrame({"combination": ["lmi", "union"], "beats_both": [np.nan, 12345.0]})
    summary = summary.astype({"beats_both": "Int64"})
    lines = markdown(summary).splitlines()
    assert lines[2].split("|")[2].strip() == "–"
    assert lines[3].split("|")[2].strip() == "12345"


def test_scoring_in_blocks_equals_scoring_everything_at_once(tmp_path, rng, monkeypatch):
    n, h, w = 9, 6, 8
    truth = np.zeros((n, h, w), np.uint8)
    for i in range(n - 2):  # the last two slices have no foreground
        truth[i, i % 3 : i % 3 + 3, 2:6] = 1
    with StoreWriter(tmp_path / "store", h, w, 1) as writer:
        writer.append(rng.integers(0, 256, (n, h, w), dtype=np.uint8), truth)
    order = rng.permutation(n)  # the test side lists store rows in any order
    rows = pd.DataFrame(
        {
            "slice_id": [f"s{i}" for i in range(n)],
            "row": order,
            "label": ["fg"] * (n - 2) + ["empty"] * 2,
            "subset": "test",
        }
    )
    rows.to_csv(tmp_path / "split.csv", index=False)
    probs, paths, outs = {}, {}, {}
    for init in ("lmi", "tii"):
        for rep in (1, 2):
            noise = rng.normal(0, 70, (n, h, w))
            probs[init, rep] = np.clip(truth[order] * 150 + 60 + noise, 0, 255).astype(np.uint8)
            paths[init, rep] = tmp_path / f"{init}{rep}.npz"
            outs[init, rep] = tmp_path / f"{init}{rep}.csv"
            with PredictionWriter(paths[init, rep], rows["slice_id"], h, w) as writer:
                writer.write(probs[init, rep])
    monkeypatch.setattr(scoring, "BLOCK_BYTES", 4 * h * w * 3)  # blocks of one image
    scoring.score_regime(
        paths, tmp_path / "split.csv", tmp_path / "store", outs, tmp_path / "s.csv"
    )
    for key in paths:
        expected = image_metrics(probs[key], truth[order].astype(bool))
        table = pd.read_csv(outs[key])
        assert table["slice_id"].tolist() == rows["slice_id"].tolist()
        pd.testing.assert_frame_equal(table[expected.columns], expected, check_dtype=False)
    binary = {i: np.stack([probs[i, r] >= 128 for r in (1, 2)]) for i in ("lmi", "tii")}
    expected = synergy_frame(synergy_block(binary, truth[order].astype(bool)), rows)
    synergy = pd.read_csv(tmp_path / "s.csv", dtype={"slice_id": str})
    pd.testing.assert_frame_equal(synergy, expected, check_dtype=False)


def test_scoring_refuses_predictions_of_other_images(tmp_path, rng):
    with StoreWriter(tmp_path / "store", 2, 2, 1) as writer:
        writer.append(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 2), np.uint8))
    split = pd.DataFrame({"slice_id": ["a", "b"], "row": [0, 1], "label": "x", "subset": "test"})
    split.to_csv(tmp_path / "split.csv", index=False)
    with PredictionWriter(tmp_path / "p.npz", ["b", "a"], 2, 2) as writer:
        writer.write(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="p.npz: slice ids differ from the test side"):
        scoring.score_regime(
            {("lmi", 1): tmp_path / "p.npz"},
            tmp_path / "split.csv",
            tmp_path / "store",
            {("lmi", 1): tmp_path / "m.csv"},
        )
    assert not (tmp_path / "m.csv").exists()

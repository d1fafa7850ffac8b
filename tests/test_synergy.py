"""Union/intersection of TII and LMI masks on hand-made masks."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from synergyseg.synergy import synergy_summary, synergy_table


def write_case(tmp_path, truth, lmi_reps, tii_reps):
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "masks" / "s1.png"), truth.astype(np.uint8) * 255)
    pd.DataFrame(
        {
            "slice_id": ["s1"],
            "image": ["x"],
            "mask": [str(tmp_path / "masks" / "s1.png")],
            "case": ["c"],
            "label": ["l"],
            "foreground_pixels": [int(truth.sum())],
            "subset": ["test"],
        }
    ).to_csv(tmp_path / "split.csv", index=False)
    paths = {}
    for init, reps in (("lmi", lmi_reps), ("tii", tii_reps)):
        paths[init] = []
        for k, rep in enumerate(reps):
            path = tmp_path / f"{init}{k}.npz"
            np.savez_compressed(
                path, probs=(rep[None] * 255).astype(np.uint8), slice_ids=np.array(["s1"])
            )
            paths[init].append(str(path))
    return paths


def test_union_finds_what_either_model_finds(tmp_path):
    truth = np.zeros((4, 4), bool)
    truth[0, :] = True  # 4 foreground pixels
    lmi = np.zeros((4, 4), bool)
    lmi[0, :2] = True  # finds the left half
    tii = np.zeros((4, 4), bool)
    tii[0, 2:] = True  # finds the right half
    tii_noisy = tii.copy()
    tii_noisy[3, 3] = True  # a second TII replicate with one false positive
    paths = write_case(tmp_path, truth, [lmi, lmi], [tii, tii_noisy])
    table = synergy_table(paths, tmp_path / "split.csv").set_index("combination")
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

"""The automatic choice of figure images: roles, fallback metric, ties, duplicates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, recall_score

from synergyseg.showcase import ShowcaseSettings, choose_images, displayed_mask_table


def per_image(rows):
    """Long per-image table as regime_statistics writes it, from (id, label, metric, lmi, tii)."""
    frame = pd.DataFrame(rows, columns=["slice_id", "label", "metric", "lmi", "tii"])
    frame["delta"] = frame["tii"] - frame["lmi"]
    return frame


def test_each_role_picks_its_image_per_label():
    table = per_image(
        [
            ("a", "benign", "dice", 0.50, 0.90),  # Δ +0.40
            ("b", "benign", "dice", 0.80, 0.70),  # Δ -0.10
            ("c", "benign", "dice", 0.60, 0.65),  # Δ +0.05, worst TII
            ("d", "benign", "dice", 0.95, 0.95),  # Δ 0, best LMI, the lower median of Δ
            ("e", "malignant", "dice", 0.20, 0.10),
            ("f", "malignant", "dice", 0.30, 0.60),
        ]
    )
    roles = ("tii_ahead", "lmi_ahead", "typical", "lmi_best", "tii_worst")
    choice = choose_images(table, ShowcaseSettings(roles=roles))
    benign = choice[choice["label"] == "benign"].set_index("role")["slice_id"].to_dict()
    assert benign == {"tii_ahead": "a", "lmi_ahead": "b", "typical+lmi_best": "d", "tii_worst": "c"}
    malignant = choice[choice["label"] == "malignant"]  # two images: the lower median is e
    assert malignant[["slice_id", "role"]].values.tolist() == [
        ["f", "tii_ahead+lmi_best"],
        ["e", "lmi_ahead+typical+tii_worst"],
    ]
    row = choice.set_index("slice_id").loc["a"]
    assert (row["metric"], row["lmi"], row["tii"]) == ("dice", 0.5, 0.9)
    assert row["delta"] == pytest.approx(0.4)


def test_labels_without_a_defined_dice_fall_back_to_specificity():
    table = per_image(
        [
            ("x", "no kidney", "dice", np.nan, np.nan),
            ("y", "no kidney", "dice", np.nan, np.nan),
            ("x", "no kidney", "specificity", 0.99, 1.0),
            ("y", "no kidney", "specificity", 0.90, 0.95),
            ("k", "kidney", "dice", 0.7, 0.8),
            ("k", "kidney", "specificity", 0.99, 0.99),
        ]
    )
    choice = choose_images(table, ShowcaseSettings(roles=("tii_ahead",)))
    assert choice[["label", "slice_id", "metric"]].values.tolist() == [
        ["kidney", "k", "dice"],
        ["no kidney", "y", "specificity"],  # Δ 0.05 > 0.01
    ]


def test_ties_go_to_the_first_slice_id_whatever_the_row_order():
    rows = [(s, "l", "dice", 0.5, 0.7) for s in ("q", "b", "m")]
    for order in (rows, rows[::-1]):
        choice = choose_images(per_image(order), ShowcaseSettings(roles=("tii_ahead",)))
        assert choice["slice_id"].tolist() == ["b"]


def test_differences_equal_in_exact_arithmetic_tie_despite_rounding_noise():
    # 0.3 - 0.1 and 0.7 - 0.5 differ in floating point; both are Δ = ±0.2
    ahead = per_image([("z", "l", "dice", 0.1, 0.3), ("a", "l", "dice", 0.5, 0.7)])
    behind = per_image([("z", "l", "dice", 0.3, 0.1), ("a", "l", "dice", 0.7, 0.5)])
    assert ahead["delta"].iloc[0] != ahead["delta"].iloc[1]
    for table, role in ((ahead, "tii_ahead"), (behind, "lmi_ahead"), (ahead, "typical")):
        choice = choose_images(table, ShowcaseSettings(roles=(role,)))
        assert choice["slice_id"].tolist() == ["a"], role


def test_a_role_is_left_empty_rather_than_claim_the_opposite():
    """LMI ahead on both images: no row may be captioned "TII ahead"."""
    table = per_image([("a", "l", "dice", 0.8, 0.7), ("b", "l", "dice", 0.9, 0.6)])
    choice = choose_images(table, ShowcaseSettings())
    assert choice[["slice_id", "role"]].values.tolist() == [["b", "lmi_ahead+typical"]]
    tie = per_image([("a", "l", "dice", 0.0, 0.0)])  # both miss: nobody is ahead
    assert choice_roles(tie) == ["typical"]
    with pytest.raises(ValueError, match="add 'typical' to figures.images.roles"):
        choose_images(tie, ShowcaseSettings(roles=("tii_ahead", "lmi_ahead")))


def choice_roles(table):
    return choose_images(table, ShowcaseSettings())["role"].tolist()


def test_images_are_ranked_by_the_masks_the_panels_draw():
    """The replicate medians favour LMI on "x", its eq. 2 (intersection) masks favour TII:
    the figure ranks, and captions, what its overlays show."""
    truth = np.zeros((1, 4, 4), dtype=bool)
    truth[0, :2] = True  # 8 foreground pixels
    lmi_reps = [truth.copy(), truth.copy()]
    lmi_reps[0][0, 0, :2] = False
    lmi_reps[1][0, 0, 2:] = False  # each replicate misses 2 pixels, different ones
    tii_reps = [truth.copy(), truth.copy()]
    tii_reps[0][0, 0, :3] = False
    tii_reps[1][0, 0, :3] = False  # each misses the same 3 pixels
    medians = {
        init: np.median([f1_score(truth.ravel(), rep.ravel()) for rep in reps])
        for init, reps in (("lmi", lmi_reps), ("tii", tii_reps))
    }
    assert medians["lmi"] > medians["tii"]  # 0.857 against 0.769
    shown = {init: np.logical_and(*reps) for init, reps in (("lmi", lmi_reps), ("tii", tii_reps))}
    rows = []
    for combination, mask in shown.items():
        dice = f1_score(truth.ravel(), mask.ravel())
        sensitivity = recall_score(truth.ravel(), mask.ravel())
        rows.append(("x", "l", combination, dice, sensitivity, 1.0))
    rows.append(("x", "l", "union", 1.0, 1.0, 1.0))  # other combinations are not ranked
    synergy = pd.DataFrame(
        rows, columns=["slice_id", "label", "combination", "dice", "sensitivity", "specificity"]
    )
    table = displayed_mask_table(synergy)
    dice = table[table["metric"] == "dice"].iloc[0]
    assert dice["lmi"] == pytest.approx(2 * 4 / (4 + 8))  # the intersection keeps 4 of 8
    assert dice["tii"] == pytest.approx(2 * 5 / (5 + 8))  # and 5 of 8
    assert choose_images(table, ShowcaseSettings(roles=("tii_ahead",)))["slice_id"].tolist() == [
        "x"
    ]


def test_maps_cannot_rank_the_masks_shown():
    with pytest.raises(ValueError, match="ranked by one of"):
        ShowcaseSettings(metric="auroc")


def test_typical_is_the_lower_median_of_delta():
    deltas = {"a": 0.1, "b": 0.3, "c": -0.2, "d": 0.2}  # sorted: c, a, d, b
    table = per_image([(k, "l", "dice", 0.5, 0.5 + v) for k, v in deltas.items()])
    choice = choose_images(table, ShowcaseSettings(roles=("typical",)))
    assert choice["slice_id"].tolist() == ["a"]


def test_unknown_roles_are_refused():
    with pytest.raises(ValueError, match="roles must be among"):
        ShowcaseSettings(roles=("prettiest",))


def test_a_dataset_with_many_labels_shows_those_with_most_images(caplog):
    """A label per row: hundreds of labels (patients, free text) would ask matplotlib for a
    canvas past its limit after the GPU work. The labels with most test images are shown,
    in name order, ties by name, and the rest are named in the log."""
    rows = []
    sizes = {"rare": 1, "common": 5, "middle": 3, "also3": 3, "tiny": 1}
    for label, n in sizes.items():
        for k in range(n):
            rows.append((f"{label}{k}", label, "dice", 0.5, 0.6 + k / 100))
    with caplog.at_level("WARNING"):
        choice = choose_images(per_image(rows), ShowcaseSettings(roles=("tii_ahead",)), 3)
    assert choice["label"].tolist() == ["also3", "common", "middle"]
    assert "image panels: 3 of 5 labels shown" in caplog.text
    assert "not shown: 'rare', 'tiny'" in caplog.text
    everything = choose_images(per_image(rows), ShowcaseSettings(roles=("tii_ahead",)))
    assert sorted(everything["label"]) == sorted(sizes)

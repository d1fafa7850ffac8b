"""Splits: proportions, disjointness, determinism, grouping, stratification, depletion chain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synergyseg.label_tables import label_table, regime_order
from synergyseg.seeds import regime_seed
from synergyseg.splits import SplitSettings, deplete, depletion_name, random_split


def manifest(n=100, malignant=8, per_case=1):
    ids = [f"img{i:03d}" for i in range(n)]
    labels = ["malignant" if i < malignant else "benign" for i in range(n)]
    cases = [f"case{i // per_case:03d}" for i in range(n)]
    return pd.DataFrame({"slice_id": ids, "case": cases, "label": labels})


def test_split_is_80_20_disjoint_and_complete():
    split = random_split(manifest(), SplitSettings(), seed=1)
    train, test = split[split.subset == "train"], split[split.subset == "test"]
    assert (len(train), len(test)) == (80, 20)
    assert set(train.slice_id).isdisjoint(test.slice_id)
    assert set(train.slice_id) | set(test.slice_id) == set(split.slice_id)


def test_stratified_split_keeps_label_proportions():
    split = random_split(manifest(n=200, malignant=16), SplitSettings(stratify=True), seed=5)
    counts = split.groupby(["subset", "label"]).size()
    assert (
        counts[("train", "malignant")] == 13 and counts[("test", "malignant")] == 3
    )  # 8 % of each side


def test_same_seed_same_split_other_seed_other_split():
    a = random_split(manifest(), SplitSettings(), seed=42)
    b = random_split(manifest(), SplitSettings(), seed=42)
    c = random_split(manifest(), SplitSettings(), seed=43)
    pd.testing.assert_frame_equal(a, b)
    assert not a.subset.equals(c.subset)


def test_grouped_split_never_puts_one_case_on_both_sides():
    frame = manifest(n=120, malignant=30, per_case=6)  # 20 cases of 6 slices
    split = random_split(frame, SplitSettings(group_by_case=True), seed=3)
    sides = split.groupby("case")["subset"].nunique()
    assert (sides == 1).all()
    assert split.groupby("subset")["case"].nunique().to_dict() == {"test": 4, "train": 16}


def test_depletion_chain_sizes_and_nesting():
    settings = SplitSettings()
    regimes = {"split1": random_split(manifest(), settings, seed=1)}
    previous = regimes["split1"]
    for fraction, expected in ((0.6, 60), (0.4, 40), (0.2, 20), (0.1, 10)):
        current = deplete(
            previous, fraction, settings, seed=regime_seed(1, depletion_name(fraction))
        )
        train = set(current.slice_id[current.subset == "train"])
        assert len(train) == expected
        # training images only ever leave: the new training set is inside the previous one
        assert train <= set(previous.slice_id[previous.subset == "train"])
        previous = current
    assert depletion_name(0.1) == "train10"


def test_grouped_depletion_moves_whole_cases():
    frame = manifest(n=200, malignant=40, per_case=5)  # 40 cases
    settings = SplitSettings(group_by_case=True)
    base = random_split(frame, settings, seed=2)
    depleted = deplete(base, 0.6, settings, seed=9)
    assert (depleted.groupby("case")["subset"].nunique() == 1).all()
    assert depleted.loc[depleted.subset == "train", "case"].nunique() == 24


def test_depletion_must_shrink_training():
    base = random_split(manifest(), SplitSettings(), seed=1)
    with pytest.raises(ValueError, match="must shrink"):
        deplete(base, 0.9, SplitSettings(), seed=1)


def test_tiny_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="too small"):
        random_split(manifest(n=1, malignant=0), SplitSettings(), seed=1)


def test_label_table_counts_and_percentages():
    split = random_split(manifest(), SplitSettings(), seed=1)
    table = label_table({"split1": split}, "skin").set_index(["subset", "label"])
    assert table.loc[("test", "malignant"), "n"] == 2
    assert table.loc[("test", "malignant"), "percent"] == pytest.approx(10.0)
    assert table.loc[("train", "benign"), "percent"] == pytest.approx(92.5)


def test_regime_order_and_seed_stability():
    assert regime_order(["train10", "split2", "train60", "split1"]) == [
        "split1",
        "split2",
        "train60",
        "train10",
    ]
    assert regime_seed(2021, "skin", "split1") == regime_seed(2021, "skin", "split1")
    assert regime_seed(2021, "skin", "split1") != regime_seed(2021, "skin", "split2")
    assert isinstance(regime_seed(0, "x"), int) and 0 <= regime_seed(0, "x") < 2**32
    assert np.unique([regime_seed(1, str(i)) for i in range(50)]).size == 50


def test_depletion_is_deterministic_for_a_seed():
    base = random_split(manifest(), SplitSettings(), seed=1)
    a = deplete(base, 0.6, SplitSettings(), seed=5)
    pd.testing.assert_frame_equal(a, deplete(base, 0.6, SplitSettings(), seed=5))
    assert not a["subset"].equals(deplete(base, 0.6, SplitSettings(), seed=6)["subset"])


def test_slice_ids_that_look_like_numbers_stay_names(tmp_path):
    """A custom dataset's ids "007" and "7" are two slices, in the split as in the store."""
    from synergyseg.manifests import read_manifest

    manifest = pd.DataFrame(
        {"slice_id": ["007", "7"], "row": [0, 1], "case": ["01", "1"], "label": ["1", "0"]}
    )
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    table = read_manifest(tmp_path / "manifest.csv")
    assert table["slice_id"].tolist() == ["007", "7"] and table["case"].tolist() == ["01", "1"]

"""Statistical conventions checked against scipy and the paper's published tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from synergyseg.label_tables import training_percents
from synergyseg.selection import practical_mark, replicate_medians, select_split
from synergyseg.stats import mood_test
from synergyseg.tables import table3

# Table S1 of the paper: skin, five 80:20 sets, medians (LMI, TII) per metric
TABLE_S1 = {
    1: {
        "auroc": (0.8544, 0.9282),
        "dice": (0.8273, 0.8857),
        "sensitivity": (0.7156, 0.8891),
        "specificity": (0.9999, 0.9986),
    },
    2: {
        "auroc": (0.8332, 0.9182),
        "dice": (0.7974, 0.8774),
        "sensitivity": (0.6711, 0.8572),
        "specificity": (1.0, 0.9989),
    },
    3: {
        "auroc": (0.8633, 0.9247),
        "dice": (0.8370, 0.8806),
        "sensitivity": (0.7329, 0.8834),
        "specificity": (0.9999, 0.9986),
    },
    4: {
        "auroc": (0.8695, 0.9162),
        "dice": (0.8470, 0.8815),
        "sensitivity": (0.7439, 0.8704),
        "specificity": (0.9999, 0.9987),
    },
    5: {
        "auroc": (0.8825, 0.9377),
        "dice": (0.8620, 0.8880),
        "sensitivity": (0.7775, 0.8976),
        "specificity": (0.9998, 0.9981),
    },
}
# the † marks printed in Table S1 (median rows)
PRINTED_DAGGERS = {
    1: {"auroc", "dice", "sensitivity"},
    2: {"auroc", "dice", "sensitivity"},
    3: {"auroc", "sensitivity"},
    4: {"sensitivity"},
    5: {"auroc", "sensitivity"},
}


def test_dagger_rule_reproduces_table_s1():
    for split, summary in TABLE_S1.items():
        marked = {m for m, (lmi, tii) in summary.items() if practical_mark(lmi, tii) == "tii"}
        assert marked == PRINTED_DAGGERS[split], split


def test_dagger_rule_on_table_1_prostate_and_kidney():
    assert practical_mark(0.9520, 0.9059) is None  # prostate sensitivity: 0.046, no †
    assert practical_mark(0.7156, 0.8891) == "tii"
    assert practical_mark(0.95, 0.89) == "lmi"
    assert practical_mark(np.nan, 0.9) is None


def test_split_selection_picks_set_1_and_can_be_fixed():
    chosen, record = select_split(TABLE_S1)
    assert chosen == 1  # sets 1 and 2 tie with three †; lowest index wins
    assert [r["daggers"] for r in record] == [3, 3, 2, 1, 2]
    assert [r["split"] for r in record if r["chosen"]] == [1]
    assert select_split(TABLE_S1, fixed=4)[0] == 4
    with pytest.raises(ValueError, match="not among"):
        select_split(TABLE_S1, fixed=9)


def test_mood_matches_scipy(rng):
    a, b = rng.normal(0.8, 0.1, 60), rng.normal(0.85, 0.1, 70)
    ours = mood_test(a, b)
    stat, p, median, table = sps.median_test(a, b)
    assert (ours.statistic, ours.p, ours.grand_median) == pytest.approx((stat, p, median))
    assert ours.table == tuple(tuple(int(v) for v in row) for row in table)
    assert (ours.n_lmi, ours.n_tii, ours.ties_rule) == (60, 70, "below")


def test_mood_grand_median_at_the_maximum_uses_the_tie_rule():
    lmi = np.array([1.0] * 30 + [0.99] * 5)
    tii = np.array([1.0] * 20 + [0.95] * 15)
    with pytest.raises(ValueError):
        sps.median_test(lmi, tii)  # scipy's failure case
    result = mood_test(lmi, tii)
    expected = sps.median_test(lmi, tii, ties="above")
    assert result.ties_rule == "above" and result.p == pytest.approx(expected[1])


def test_mood_all_values_equal_is_undefined_and_nan_is_dropped():
    result = mood_test([1.0, 1.0, np.nan], [1.0, 1.0])
    assert np.isnan(result.p) and not result.significant() and result.n_lmi == 2
    assert result.ties_rule.startswith("undefined")


def test_replicate_medians_ignore_undefined_values():
    reps = [
        pd.DataFrame({"slice_id": ["a", "b", "c"], "dice": [0.8, np.nan, np.nan]}),
        pd.DataFrame({"slice_id": ["a", "b", "c"], "dice": [0.6, 0.5, np.nan]}),
        pd.DataFrame({"slice_id": ["a", "b", "c"], "dice": [0.9, 0.7, np.nan]}),
    ]
    medians = replicate_medians(reps, "dice")
    assert medians["a"] == pytest.approx(0.8) and medians["b"] == pytest.approx(0.6)
    assert np.isnan(medians["c"])


def hand_per_image():
    """Four images, Dice medians chosen by hand (one undefined for both inits)."""
    return pd.DataFrame(
        {
            "slice_id": ["a", "b", "c", "d"],
            "label": ["x", "x", "y", "y"],
            "metric": "dice",
            "lmi": [0.50, 0.90, 0.70, np.nan],
            "tii": [0.60, 0.90, 0.65, np.nan],
        }
    ).assign(delta=lambda f: f["tii"] - f["lmi"])


def test_table_2_counts_on_a_hand_made_example():
    from synergyseg.stats import StatsSettings, metric_tests

    row = metric_tests(hand_per_image(), StatsSettings(bootstrap_resamples=200)).iloc[0]
    assert (row["delta_positive"], row["delta_zero"], row["delta_negative"]) == (1, 1, 1)
    assert row["delta_undefined"] == 1 and row["n_images"] == 4
    assert (row["lmi_high_scores"], row["tii_high_scores"]) == (1, 1)  # only b reaches 0.9
    assert row["lmi_median"] == pytest.approx(0.70) and row["tii_median"] == pytest.approx(0.65)
    assert row["lmi_sd"] == pytest.approx(np.std([0.5, 0.9, 0.7], ddof=1))


def test_paired_tests_match_scipy_and_the_ci_covers_the_median(rng):
    from synergyseg.stats import StatsSettings, metric_tests

    lmi = rng.uniform(0.5, 0.9, 80)
    tii = lmi + rng.normal(0.03, 0.05, 80)
    frame = pd.DataFrame(
        {"slice_id": range(80), "label": "x", "metric": "dice", "lmi": lmi, "tii": tii}
    )
    row = metric_tests(frame.assign(delta=tii - lmi), StatsSettings()).iloc[0]
    expected = sps.wilcoxon(tii - lmi)
    assert row["wilcoxon_p"] == pytest.approx(expected.pvalue)
    assert row["median_delta"] == pytest.approx(np.median(tii - lmi))
    assert row["median_delta_ci_low"] < row["median_delta"] < row["median_delta_ci_high"]


def test_holm_matches_statsmodels_and_keeps_nan():
    from statsmodels.stats.multitest import multipletests

    from synergyseg.stats import holm

    p = [0.01, np.nan, 0.04, 0.03]
    adjusted, reject = holm(p)
    ref_reject, ref_adjusted, _, _ = multipletests([0.01, 0.04, 0.03], method="holm")
    np.testing.assert_allclose(adjusted[[0, 2, 3]], ref_adjusted)
    assert np.isnan(adjusted[1]) and not reject[1]
    assert list(reject[[0, 2, 3]]) == list(ref_reject)


def test_normality_reports_shapiro_before_and_after_yeo_johnson(rng):
    from synergyseg.stats import normality

    skewed = rng.beta(8, 1, 200)  # Dice-like: piled up near 1
    frame = pd.DataFrame({"metric": "dice", "lmi": skewed, "tii": skewed[::-1]})
    table = normality(frame)
    row = table[table["init"] == "lmi"].iloc[0]
    w, p = sps.shapiro(skewed)
    assert row["shapiro_w"] == pytest.approx(w) and row["shapiro_p"] == pytest.approx(p)
    transformed, lam = sps.yeojohnson(skewed)
    assert row["yeojohnson_lambda"] == pytest.approx(lam)
    assert row["shapiro_p_yj"] > row["shapiro_p"]


def test_table_2_layout_marks_the_model_better_on_more_images():
    from synergyseg.stats import StatsSettings, metric_tests
    from synergyseg.tables import table2

    lmi = np.array([0.5, 0.6, 0.7, 0.8, 0.95, np.nan])
    tii = np.array([0.6, 0.7, 0.8, 0.8, 0.92, np.nan])  # TII better on 3 of 5 defined, LMI on 1
    frame = pd.DataFrame(
        {"slice_id": list("abcdef"), "label": "x", "metric": "dice", "lmi": lmi, "tii": tii}
    )
    tests = metric_tests(frame.assign(delta=tii - lmi), StatsSettings(bootstrap_resamples=200))
    row = table2({"skin": tests}, high_score=0.9, threshold=0.05).iloc[0]
    assert row["n_test"] == 6
    assert row["Δm > 0 (TII better) n (%)"] == "3 (50)†"
    assert row["Δm = 0 n (%)"] == "1 (17)"
    assert row["Δm < 0 (LMI better) n (%)"] == "1 (17)"
    assert row["Δm undefined n (%)"] == "1 (17)"
    assert (row["LMI ≥ 0.9"], row["TII ≥ 0.9"]) == ("1", "1")


def test_table_2_marks_counts_on_the_base_of_its_percentages():
    """Kidney-like Dice: most slices have no kidney (Δm undefined). 18 % against 15 % of the
    test images is 3 points apart, under practical_difference, so no † (as in the paper), even
    though among the 40 defined images it would be 45 % against 37.5 %."""
    from synergyseg.stats import StatsSettings, metric_tests
    from synergyseg.tables import table2

    lmi = np.r_[np.full(18, 0.5), np.full(15, 0.7), np.full(7, 0.6), np.full(60, np.nan)]
    tii = np.r_[np.full(18, 0.7), np.full(15, 0.5), np.full(7, 0.6), np.full(60, np.nan)]
    frame = pd.DataFrame(
        {"slice_id": [f"s{i}" for i in range(100)], "label": "x", "metric": "dice"}
    ).assign(lmi=lmi, tii=tii, delta=tii - lmi)
    tests = metric_tests(frame, StatsSettings(bootstrap_resamples=200))
    row = table2({"kidney": tests}, high_score=0.9, threshold=0.05).iloc[0]
    assert row["Δm > 0 (TII better) n (%)"] == "18 (18)"
    assert row["Δm < 0 (LMI better) n (%)"] == "15 (15)"
    assert row["Δm undefined n (%)"] == "60 (60)"


def test_bootstrap_interval_in_bounded_batches_equals_scipys_unbatched(monkeypatch):
    from synergyseg import stats

    delta = np.random.default_rng(3).normal(0.01, 0.1, 3001)
    settings = stats.StatsSettings(bootstrap_resamples=500, seed=7)
    expected = sps.bootstrap(
        (delta,),
        np.median,
        n_resamples=500,
        confidence_level=0.95,
        method="percentile",
        random_state=np.random.default_rng(7),
    ).confidence_interval
    monkeypatch.setattr(stats, "BOOTSTRAP_BATCH_VALUES", 37 * len(delta))  # batches of 37
    assert stats._bootstrap_median_ci(delta, settings) == (expected.low, expected.high)


def test_table_3_gives_each_dataset_its_own_share_of_the_selected_split():
    """kidney's own splits.test_fraction of 0.3 makes its selected split 70 % training."""

    def tests(lmi, tii):
        frame = pd.DataFrame({"metric": ["dice"], "lmi_median": [lmi], "tii_median": [tii]})
        return frame.assign(mood_significant=False, dagger_median=None)

    results = {
        "skin": {"selected": tests(0.8, 0.85), "train40": tests(0.7, 0.75)},
        "kidney": {"selected": tests(0.6, 0.65), "train40": tests(0.5, 0.52)},
    }
    percents = {
        "skin": training_percents("selected", ["train40"], 0.2),
        "kidney": training_percents("selected", ["train40"], 0.3),
    }
    table = table3(results, percents)
    dice = table[table["metric"] == "Dice score"]
    assert dice["training %"].tolist() == [40, "skin 80, kidney 70"]
    assert dice["skin TII"].tolist() == ["0.7500", "0.8500"]
    assert dice["kidney LMI"].tolist() == ["0.5000", "0.6000"]
    same = table3(results, {d: percents["skin"] for d in results})
    assert same[same["metric"] == "Dice score"]["training %"].tolist() == [40, 80]

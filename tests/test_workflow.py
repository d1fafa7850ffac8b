"""Snakemake end to end on the finished demo: what it produces, and what each change of
settings or code re-plans. (Restarts and reruns from nothing are in test_restarts.py.)"""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_runs import DATASETS, edited_copy, planned_jobs, snakemake

from synergyseg.cam_files import chosen_test_rows
from synergyseg.metrics import binary_mask_metrics
from synergyseg.selection import selected_regime
from synergyseg.store import SliceStore, manifest_rows

pytestmark = pytest.mark.e2e


def test_demo_produces_slices_splits_and_table_s2(demo):
    config = yaml.safe_load((demo / "config" / "demo.yaml").read_text())
    for dataset in DATASETS:
        manifest = pd.read_csv(demo / "results" / dataset / "slices" / "manifest.csv")
        assert len(manifest) > 0 and (demo / manifest["image"].iloc[0]).is_file()
        for regime in ("split1", "split2", "train40"):
            split = pd.read_csv(demo / "results" / dataset / "splits" / f"{regime}.csv")
            assert set(split["subset"]) == {"train", "test"}
            assert len(split) == len(manifest)
    kidney = pd.read_csv(demo / "results" / "kidney" / "splits" / "split1.csv")
    assert (kidney.groupby("case")["subset"].nunique() == 1).all()  # demo groups kidney by case
    assert config["datasets"]["kidney"]["splits"]["group_by_case"]
    table = pd.read_csv(demo / "results" / "tables" / "table_s2.csv")
    assert set(table["dataset"]) == set(DATASETS)
    assert "split1 train n (%)" in (demo / "results" / "tables" / "table_s2.md").read_text()
    tables = demo / "results" / "tables"
    for name in (
        "table1",
        "table2",
        "table3",
        "table_s3_s4",
        "mood_tests",
        "normality",
        "synergy",
        "split_selection",
        "table_beyond",
        *(f"table_s1_{d}" for d in DATASETS),
    ):
        assert (tables / f"{name}.csv").is_file() and (tables / f"{name}.md").is_file(), name
    table1 = pd.read_csv(tables / "table1.csv")
    assert {f"{d} {i}" for d in DATASETS for i in ("LMI", "TII")} <= set(table1.columns)
    assert set(pd.read_csv(tables / "split_selection.csv")["dataset"]) == set(DATASETS)
    assert (demo / "logs" / "make_slices" / "kidney.log").is_file()
    assert (demo / "benchmarks" / "make_slices" / "kidney.tsv").is_file()
    for init in ("tii", "lmi"):
        assert (demo / f"results/kidney/models/train40/{init}/rep2.pt").is_file()
        assert (demo / "results/kidney/slices/images.npy").is_file()
        metrics = pd.read_csv(demo / f"results/kidney/metrics/train40/{init}/rep2.csv")
        assert list(metrics.columns) == [
            "slice_id",
            "label",
            "tp",
            "fp",
            "tn",
            "fn",
            "auroc",
            "dice",
            "sensitivity",
            "specificity",
            "precision",
        ]
        assert metrics.loc[metrics["label"] == "no kidney", "dice"].isna().all()
        history = pd.read_csv(demo / f"results/kidney/models/split1/{init}/rep1.history.csv")
        assert len(history) == config["datasets"]["kidney"]["epochs"]


def dice(prediction: np.ndarray, mask: np.ndarray) -> float:
    """Dice of the P >= 0.5 mask, computed here independently of the package."""
    binary = prediction >= 128
    return 2 * (binary & mask).sum() / (binary.sum() + mask.sum())


def test_demo_models_learn(demo):
    """Per test image with foreground: median Dice over the replicates; then the median over
    images must reach 0.6 for TII and LMI on every dataset (selected split: split1). TII's
    encoder was pretrained on one thread, whatever the run's --cores (its result depends on it)."""
    log = demo / "logs" / "pretrain_encoder" / "pretrained_encoder.log"
    assert "pretraining on 1 CPU thread(s)" in log.read_text()
    # the jobs were told to keep compiled kernels in the project (an optimiser's import of the
    # compiler makes the folder, even on the CPU, which compiles nothing)
    assert (demo / "resources" / "compile_cache").is_dir()
    for dataset in DATASETS:
        split = pd.read_csv(demo / "results" / dataset / "splits" / "split1.csv").set_index(
            "slice_id"
        )
        for init in ("tii", "lmi"):
            per_rep = []
            for rep in (1, 2):
                with np.load(
                    demo / f"results/{dataset}/predictions/split1/{init}/rep{rep}.npz"
                ) as data:
                    ids, probs = data["slice_ids"], data["probs"]
                assert list(ids) == list(split.index[split["subset"] == "test"])
                scores = {}
                for slice_id, prob in zip(ids, probs, strict=True):
                    mask = (
                        cv2.imread(str(demo / split.loc[slice_id, "mask"]), cv2.IMREAD_GRAYSCALE)
                        > 0
                    )
                    if mask.any():
                        scores[slice_id] = dice(prob, mask)
                per_rep.append(pd.Series(scores))
            median = float(pd.concat(per_rep, axis=1).median(axis=1).median())
            assert median >= 0.6, f"{dataset} {init}: median test Dice {median:.3f}"


FIGURES = ("segmentation", "gradcam", "synergy", "qq", "distributions", "training", "depletion")


def test_demo_explains_the_chosen_images_of_the_selected_split(demo):
    for dataset in DATASETS:
        selection = pd.read_csv(demo / "results" / dataset / "stats" / "split_selection.csv")
        chosen = f"split{int(selection.loc[selection['chosen'], 'split'].iloc[0])}"
        cam_dir = demo / "results" / dataset / "cam"
        images = pd.read_csv(cam_dir / "images.csv", dtype={"slice_id": str})
        test_side = pd.read_csv(demo / "results" / dataset / "splits" / f"{chosen}.csv")
        test_ids = set(test_side.loc[test_side["subset"] == "test", "slice_id"].astype(str))
        assert set(images["slice_id"]) <= test_ids and images["slice_id"].is_unique
        assert set(images["label"]) == set(test_side.loc[test_side["subset"] == "test", "label"])
        for init in ("lmi", "tii"):
            with np.load(cam_dir / f"{init}.npz") as data:
                assert data["slice_ids"].astype(str).tolist() == images["slice_id"].tolist()
                cam = data["cam"]
                assert cam.shape[:2] == (len(images), 2)
                assert 0.0 <= cam.min() and cam.max() <= 1.0
                assert int(data["replicates"]) == 2
                # a model that segments attends to its foreground class somewhere
                assert cam[:, 1].max() > 0.5, f"{dataset} {init}: class-1 maps are empty"
        # the masks drawn score what images.csv ranked them by, and each role's claim holds
        _, rows = chosen_test_rows(
            demo / "results" / dataset / "splits" / f"{chosen}.csv", cam_dir / "images.csv"
        )
        truth = SliceStore(demo / "results" / dataset / "slices").masks(manifest_rows(rows))
        for init in ("lmi", "tii"):
            with np.load(cam_dir / f"{init}.npz") as data:
                shown = binary_mask_metrics(data["mask"], truth)
            for i, row in images.iterrows():
                assert shown[row["metric"]].iloc[i] == pytest.approx(row[init], abs=1e-9)
        roles = images["role"].str.split("+")
        assert (images.loc[roles.map(lambda r: "tii_ahead" in r), "delta"] > 0).all()
        assert (images.loc[roles.map(lambda r: "lmi_ahead" in r), "delta"] < 0).all()


def test_demo_renders_every_panel_and_the_report(demo):
    from synergyseg.figures.panels import panel_size

    for dataset in DATASETS:
        folder = demo / "results" / "figures" / dataset
        for name in FIGURES:
            png = cv2.imread(str(folder / f"{name}.png"))
            assert png is not None and png.shape[0] > 200, f"{dataset}/{name}.png"
            assert (folder / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        selection = pd.read_csv(demo / "results" / dataset / "stats" / "split_selection.csv")
        chosen = int(selection.loc[selection["chosen"], "split"].iloc[0])
        assert chosen in (1, 2)
        images = pd.read_csv(demo / "results" / dataset / "cam" / "images.csv")
        config = yaml.safe_load((demo / "config" / "demo.yaml").read_text())
        size = config["datasets"][dataset]["slices"]
        width, height = panel_size(len(images), 6, size["height"] / size["width"])
        dpi = config["figures"]["dpi"]
        png = cv2.imread(str(folder / "segmentation.png"))
        assert png.shape[:2] == (int(round(height * dpi, 6)), int(round(width * dpi, 6)))

    html = (demo / "results" / "report.html").read_text(encoding="utf-8")  # by the run itself
    for dataset in DATASETS:
        for name in FIGURES:
            assert f"results/figures/{dataset}/{name}.png" in html
        assert f"panel (i) for <strong>{dataset}</strong>" in html  # captions are rendered
    for table in ("table1", "table2", "table3", "table_s2", "mood_tests", "synergy"):
        assert f"results/tables/{table}.csv" in html
    assert '"All datasets"' in html


def test_new_figure_settings_rerender_figures_only(demo, tmp_path):
    other = edited_copy(demo, tmp_path / "figures")
    config = yaml.safe_load((other / "config" / "demo.yaml").read_text())
    config["figures"]["dpi"] = 120
    (other / "config" / "demo.yaml").write_text(yaml.safe_dump(config))
    plots = {"plot_examples": 3, "plot_statistics": 3}
    jobs = planned_jobs(snakemake(other, "-n", "--configfile", "config/demo.yaml").stdout)
    assert jobs == plots | {"all": 1}

    config["figures"]["dpi"] = 150
    config["figures"]["cam"]["target"] = "all"
    (other / "config" / "demo.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(other, "-n", "--configfile", "config/demo.yaml").stdout)
    assert jobs == {"explain_images": 3, "plot_examples": 3, "all": 1}  # no statistics panel

    config["figures"]["cam"]["target"] = "predicted"
    config["figures"]["images"]["metric"] = "sensitivity"  # another choice of images to show
    (other / "config" / "demo.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(other, "-n", "--configfile", "config/demo.yaml").stdout)
    assert jobs == {"choose_figure_images": 3, "explain_images": 3, "plot_examples": 3, "all": 1}

    jobs = plan_after_code_edit(demo, tmp_path / "style", "figures/style.py")
    assert jobs == plots | {"all": 1}


def test_finished_demo_has_nothing_left_to_do(demo, tmp_path):
    other = edited_copy(demo, tmp_path / "again")
    assert "Nothing to be done" in snakemake(other, "-n", "--configfile", "config/demo.yaml").stdout


def plan_after_code_edit(demo: Path, dest: Path, module: str) -> Counter:
    """Dry-run job counts after appending a comment to one package module in a copy."""
    other = edited_copy(demo, dest)
    with open(other / "src" / "synergyseg" / module, "a") as handle:
        handle.write("\n# an edit\n")
    return planned_jobs(snakemake(other, "-n", "--configfile", "config/demo.yaml").stdout)


def test_editing_prediction_code_retrains_only_the_depletion_regimes(demo, tmp_path):
    """New predictions of the 80:20 splits may change the selected split, so the depletion
    regimes (built from it) are redone; the 80:20 models themselves are never retrained."""
    other = edited_copy(demo, tmp_path / "edited")
    with open(other / "src" / "synergyseg" / "predict.py", "a") as handle:
        handle.write("\n# an edit\n")
    output = snakemake(other, "-n", "--configfile", "config/demo.yaml").stdout
    jobs = planned_jobs(output)
    assert jobs["predict"] == 9 and jobs["score_predictions"] == 9
    assert jobs["train_regime"] == 3  # train40 only: one job per dataset, its 4 models
    trained = re.findall(r"output: results/\w+/models/(\w+)/", output)
    assert set(trained) == {"train40"}
    assert not {"make_slices", "split_data", "pretrain_encoder"} & set(jobs)


def test_editing_metric_code_rescores_but_never_retrains(demo, tmp_path):
    """The selection is re-run with the new metric code; it picks the same split, so the
    depletion regime is neither re-depleted nor retrained (select_split is a checkpoint whose
    consumer depends only on the selected split's manifest)."""
    other = edited_copy(demo, tmp_path / "metrics")
    with open(other / "src" / "synergyseg" / "metrics.py", "a") as handle:
        handle.write("\n# an edit\n")
    snakemake(other, "--until", "select_split", "--configfile", "config/demo.yaml")
    log = "\n".join(p.read_text() for p in (other / "logs" / "score_predictions").rglob("*.log"))
    assert "scored" in log
    jobs = planned_jobs(snakemake(other, "-n", "--configfile", "config/demo.yaml").stdout)
    assert not {"train_regime", "predict", "deplete_split", "split_data"} & set(jobs), jobs
    assert jobs["score_predictions"] == 3  # the depletion regime's, not yet re-scored


AFTER_TRAINING = {
    "predict",
    "score_predictions",
    "compute_statistics",
    "select_split",
    "deplete_split",
    "choose_figure_images",
    "explain_images",
    "make_tables",
    "plot_examples",
    "plot_statistics",
    "table_s2",  # the depletion regime's manifest is planned again (see below)
}
AFTER_SCORING = AFTER_TRAINING - {"predict"}
# Which rules a dry run plans after an edit of each shared module (appending a comment). Where
# the split selection is re-run, a dry run cannot know that the same split will be selected,
# so it also plans the depletion regime (its manifest, Table S2, its training job);
# test_editing_metric_code_rescores_but_never_retrains shows that a real run does not.
MODULE_EDITS = {
    "atomic.py": set(),  # infrastructure: how files are written, never what they hold
    "stats.py": {"compute_statistics", "make_tables", "plot_statistics"},
    "label_tables.py": {"make_tables", "plot_statistics", "table_s2"},
    "selection.py": AFTER_SCORING | {"train_regime", "predict"},
    "metrics.py": AFTER_SCORING | {"train_regime", "predict"},
    "predictions.py": AFTER_TRAINING | {"train_regime"},
    "manifests.py": AFTER_TRAINING | {"train_regime", "split_data"},  # it reads the manifest
    "model.py": AFTER_TRAINING | {"train_regime", "pretrain_encoder"},
    "store.py": AFTER_TRAINING | {"train_regime", "make_slices", "split_data"},
}
RETRAINED = {  # train_regime jobs planned: 9 = every regime; 3 = the depletion regime only
    "selection.py": 3,
    "metrics.py": 3,
    "predictions.py": 3,
    "manifests.py": 9,
    "model.py": 9,
    "store.py": 9,
}


def test_each_shared_module_edit_replans_exactly_the_rules_that_run_it(demo, tmp_path):
    def plan(module):
        return module, plan_after_code_edit(demo, tmp_path / module.replace(".", "_"), module)

    with ThreadPoolExecutor(2) as pool:
        plans = dict(pool.map(plan, MODULE_EDITS))
    for module, expected in MODULE_EDITS.items():
        assert set(plans[module]) - {"all"} == expected, module
        assert plans[module].get("train_regime", 0) == RETRAINED.get(module, 0), module


def test_editing_table_code_reruns_the_tables_only(demo, tmp_path):
    # and the depletion plot, which takes its training shares from Table 3's helper
    jobs = plan_after_code_edit(demo, tmp_path / "tables", "tables.py")
    assert jobs == {"make_tables": 1, "all": 1}


def test_new_stats_settings_or_stats_code_rerun_statistics_only(demo, tmp_path):
    other = edited_copy(demo, tmp_path / "alpha")
    config = yaml.safe_load((other / "config" / "demo.yaml").read_text())
    config["stats"]["alpha"] = 0.01
    (other / "config" / "demo.yaml").write_text(yaml.safe_dump(config))
    # the tables and the figures that print test results; never Grad-CAM or the image panels
    after_stats = {"compute_statistics": 3, "make_tables": 1, "plot_statistics": 3, "all": 1}
    jobs = planned_jobs(snakemake(other, "-n", "--configfile", "config/demo.yaml").stdout)
    assert jobs == after_stats

    jobs = plan_after_code_edit(demo, tmp_path / "stats-code", "stats.py")
    assert jobs == after_stats


def test_a_new_selection_setting_redoes_grad_cam_only_where_another_split_is_selected(
    demo, tmp_path
):
    """`stats.practical_difference` re-runs the split selection (a checkpoint); the image
    choice, the GPU Grad-CAM job, the image panels and the depletion chain depend only on the
    split it selects."""
    other = edited_copy(demo, tmp_path / "threshold")

    def chosen():
        return {
            dataset: selected_regime(other / "results" / dataset / "stats" / "split_selection.csv")
            for dataset in DATASETS
        }

    before = chosen()
    config = yaml.safe_load((other / "config" / "demo.yaml").read_text())
    config["stats"]["practical_difference"] = 0.049
    (other / "config" / "demo.yaml").write_text(yaml.safe_dump(config))
    snakemake(other, "--until", "select_split", "--configfile", "config/demo.yaml")
    changed = [dataset for dataset in DATASETS if chosen()[dataset] != before[dataset]]
    assert len(changed) < len(DATASETS)  # else this test shows nothing
    jobs = planned_jobs(snakemake(other, "-n", "--configfile", "config/demo.yaml").stdout)
    redone_where_changed = ("choose_figure_images", "explain_images", "plot_examples")
    for rule in (*redone_where_changed, "deplete_split", "train_regime"):
        assert jobs.get(rule, 0) == len(changed), (rule, jobs)
    assert jobs["plot_statistics"] == 3 and jobs["make_tables"] == 1


def test_other_threads_or_cluster_resources_rerun_nothing(demo, tmp_path):
    other = edited_copy(demo, tmp_path / "resources")
    config = yaml.safe_load((other / "config" / "demo.yaml").read_text())
    config["train"].update(threads=2, cuda_graphs=False, compile=False, resume_state_minutes=0)
    config["resources"] = {"train_images_per_s": 50, "predict_images_per_s": 100}
    config["predict"].update(batch_size=7, threads=2)
    config["figures"]["cam"]["batch_size"] = 3
    (other / "config" / "demo.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(other, "-n", "--configfile", "config/demo.yaml")
    assert "Nothing to be done" in result.stdout


def test_a_gpu_rule_without_a_usable_gpu_stops_and_says_why(demo, tmp_path, monkeypatch):
    """`device: cuda` (the full protocol's setting) where no GPU is visible: the job fails
    with the reason in its log, instead of training on the CPU unnoticed."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, also on a machine that has one
    other = edited_copy(demo, tmp_path / "nogpu")
    target = "results/kidney/predictions/split1/tii/rep1.npz"
    result = snakemake(
        other,
        "--configfile",
        "config/demo.yaml",
        "--config",
        "device=cuda",
        "--forcerun",
        "predict",
        "--",
        target,
        check=False,
    )
    assert result.returncode != 0
    log = (other / "logs" / "predict" / "kidney" / "split1.log").read_text()
    assert "this GPU job found no usable GPU" in log
    assert "device: cpu" in log  # how to run on the CPU on purpose

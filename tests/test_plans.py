"""Snakemake plans without running the workflow: the full protocol's job graph, the profiles'
plans, the fetch-first step, and bad configs or data that must stop a run before any result."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from workflow_runs import DEMO_ARGS, ROOT, copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.e2e


def test_demo_tests_run_what_make_demo_runs():
    """The end-to-end tests' demo run is the README's `make demo`, report included."""
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\ndemo:", 1)[1]
    command = next(line for line in recipe.splitlines() if "/snakemake " in line)
    assert command.split()[1:] == ["--cores", "all", *DEMO_ARGS]


def full_protocol_plan(workdir: Path, *extra: str) -> str:
    return snakemake(workdir, "-n", "--configfile", "config/config.yaml", *extra).stdout


def test_full_protocol_plans_270_checkpoints_in_a_lean_job_graph(tmp_path):
    workdir = copy_workflow(tmp_path / "full")
    output = full_protocol_plan(workdir)
    jobs = planned_jobs(output)
    assert jobs == {
        "fetch_imagenet_weights": 1,
        "train_regime": 27,  # 3 datasets x 9 regimes, each job its 5 replicates x 2 inits
        "predict": 27,
        "score_predictions": 27,
        "compute_statistics": 3,
        "select_split": 3,
        "make_tables": 1,
        "download_kits19_case": 210,
        "download_isic_part": 6,
        "extract_isic": 1,
        "fetch_isic_labels": 1,
        "check_local_data": 1,
        "make_slices": 3,
        "split_data": 15,
        "deplete_split": 12,
        "table_s2": 1,
        "choose_figure_images": 3,
        "explain_images": 3,  # the selected split's images, both inits
        "plot_examples": 3,
        "plot_statistics": 3,
        "all": 1,
    }
    assert sum(jobs.values()) <= 700
    blocks = output.split("\nrule ")
    checkpoints = set()
    for rule, count in (("train_regime", 27), ("predict", 27), ("explain_images", 3)):
        gpu_blocks = [b for b in blocks if b.startswith(f"{rule}:")]
        assert len(gpu_blocks) == count
        assert all(re.search(r"resources: .*\bgpu=1\b", b) for b in gpu_blocks)
    for block in blocks:
        if block.startswith("train_regime:"):
            output_line = re.search(r"output: (.*)", block).group(1)
            paths = {path.strip() for path in output_line.split(",")}
            checkpoints |= {path for path in paths if path.endswith(".pt")}
    assert len(checkpoints) == 270  # one file per dataset x regime x init x replicate


def test_one_job_per_model_when_training_is_not_fused(tmp_path):
    workdir = copy_workflow(tmp_path / "unfused")
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    config["train"]["fuse"] = False
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(full_protocol_plan(workdir))
    assert jobs["train_model"] == 270 and "train_regime" not in jobs
    assert sum(jobs.values()) <= 700


def test_missing_gleason_data_stops_with_the_layout(tmp_path):
    workdir = copy_workflow(tmp_path / "gleason")
    config = {
        "datasets": {
            "prostate": {
                "format": "gleason2019",
                "source": "local",
                "path": "nowhere/gleason",
                "slices": {"width": 64, "height": 64},
            }
        }
    }
    (workdir / "config" / "mine.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--configfile", "config/mine.yaml", check=False)
    assert result.returncode != 0
    log = (workdir / "logs" / "check_local_data" / "prostate.log").read_text()
    assert "Train Imgs: folder is missing" in log and "Maps1_T" in log
    assert not (workdir / "resources" / "checked" / "prostate.csv").exists()


def test_bad_config_key_stops_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path / "badkey")
    config = yaml.safe_load((workdir / "config" / "demo.yaml").read_text())
    config["splits"]["n_split"] = 3
    (workdir / "config" / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--configfile", "config/bad.yaml", check=False)
    assert result.returncode != 0
    assert "'n_split' was unexpected" in result.stderr + result.stdout
    assert not (workdir / "resources").exists()


def test_a_configfile_replaces_the_demo_instead_of_merging_into_it(tmp_path):
    workdir = copy_workflow(tmp_path / "replace")
    config = yaml.safe_load((workdir / "config" / "demo.yaml").read_text())
    del config["pretrained"]  # the demo's `pretrained.source: pretrain` must not leak back in
    (workdir / "config" / "mine.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "-n", "--configfile", "config/mine.yaml", check=False)
    assert result.returncode != 0
    assert "config key 'model.width'" in result.stderr + result.stdout


def test_workstation_profile_plans_the_full_protocol(tmp_path):
    workdir = copy_workflow(tmp_path / "workstation")
    output = full_protocol_plan(
        workdir, "--profile", "profiles/workstation", "--resources", "gpu=2"
    )
    jobs = planned_jobs(output)
    assert jobs["train_regime"] == 27 and jobs["predict"] == 27


def test_fetching_data_first_on_a_login_node_runs_only_the_downloads(tmp_path):
    """README, Running at scale, step 1: only downloads and the weights, nothing submitted."""
    workdir = copy_workflow(tmp_path / "fetch")
    output = snakemake(workdir, "-n", "fetch_data", "--configfile", "config/config.yaml").stdout
    assert planned_jobs(output) == {
        "fetch_imagenet_weights": 1,
        "download_kits19_case": 210,
        "download_isic_part": 6,
        "extract_isic": 1,  # the labels are asked for the extracted images' ids
        "fetch_isic_labels": 1,
        "check_local_data": 1,  # Gleason2019 is placed by hand: its layout is checked
        "fetch_data": 1,
    }


def test_pinning_a_download_afterwards_reruns_nothing(tmp_path):
    """docs/data.md invites pinning the hashes of one's copy: a pin must not look like a
    changed download job (Snakemake would delete and fetch every file again, then re-slice
    and retrain), least of all for the files it does not name."""
    workdir = copy_workflow(tmp_path / "pins")
    config = {
        "datasets": {
            "kidney": {
                "format": "kits19",
                "source": "download",
                "cases": 2,
                "slices": {"width": 64, "height": 64},
            }
        },
        "pretrained": {"source": "pretrain"},
        "model": {"width": 0.125},
    }
    path = workdir / "config" / "pins.yaml"
    path.write_text(yaml.safe_dump(config))
    raw = [
        f"resources/raw/kidney/case_0000{case}/{name}.nii.gz"
        for case in (0, 1)
        for name in ("imaging", "segmentation")
    ]
    for file in raw:  # as downloaded, with Snakemake's record of the jobs that made them
        (workdir / file).parent.mkdir(parents=True, exist_ok=True)
        (workdir / file).write_bytes(b"\x1f\x8b" + bytes(2048))
    snakemake(workdir, "--configfile", "config/pins.yaml", "--touch", "-F", "--", *raw)
    config["datasets"]["kidney"]["sha256"] = {"case_00001/imaging.nii.gz": "0123456789abcdef"}
    path.write_text(yaml.safe_dump(config))
    output = snakemake(workdir, "-n", "--configfile", "config/pins.yaml", "--", *raw).stdout
    assert "Nothing to be done" in output

"""A run killed at any stage, or the data half redone from nothing, gives the finished demo's
results again, byte for byte. (A file of its own, so that it runs beside test_workflow.py on
the other test worker, on the same demo run.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from workflow_runs import DATASETS, copy_workflow, edited_copy, planned_jobs, snakemake

pytestmark = pytest.mark.e2e


def test_rerun_from_scratch_is_byte_identical(demo, tmp_path):
    """The data half (phantoms, slices, 80:20 splits) again from nothing: identical bytes.
    (The depletion regimes follow the trained models through the split selection; their
    determinism given a selection is covered by the unit tests.)"""
    other = copy_workflow(tmp_path / "again")
    targets = [f"results/{d}/splits/split{k}.csv" for d in DATASETS for k in (1, 2)]
    snakemake(other, *targets, "--configfile", "config/demo.yaml")
    for dataset in DATASETS:
        for name in (
            "slices/manifest.csv",
            "slices/images.npy",
            "slices/masks.npy",
            "splits/split1.csv",
            "splits/split2.csv",
        ):
            first = (demo / "results" / dataset / name).read_bytes()
            assert first == (other / "results" / dataset / name).read_bytes(), (
                f"{dataset}/{name} differs"
            )


# --- kill tests: a run killed while a stage publishes its outputs restarts cleanly ----------

# Imported by every Python process of a run (sitecustomize on PYTHONPATH): when a job is about
# to rename its finished temporary file onto the output named by SYNERGYSEG_TEST_KILL_AT, the
# whole run - Snakemake and its jobs, one process group - dies with SIGKILL, as in a power cut
# or `kill -9`. The job's other outputs may already be in place, the worst moment to die.
KILL_ON_PUBLISH = """
import os, signal
_target = os.environ.get("SYNERGYSEG_TEST_KILL_AT")
if _target:
    _replace = os.replace

    def _replace_or_die(src, dst, *args, **kwargs):
        if os.fspath(dst).endswith(_target):
            os.killpg(0, signal.SIGKILL)
        return _replace(src, dst, *args, **kwargs)

    os.replace = _replace_or_die
"""

# stage: (rule forced to run again, the output it is publishing when the run dies). From the
# end of the DAG backwards, so that redoing one stage never makes a later one out of date.
KILL_POINTS = {
    "figures": ("plot_examples", "results/figures/kidney/segmentation.pdf"),
    "tables": ("make_tables", "results/tables/table1.md"),
    "statistics": ("compute_statistics", "results/kidney/stats/train40/tests.csv"),
    "metrics": ("score_predictions", "results/kidney/metrics/split1/lmi/rep2.csv"),
    "prediction": ("predict", "results/kidney/predictions/split1/lmi/rep2.npz"),
    "training": ("train_regime", "results/kidney/models/train40/lmi/rep2.pt"),  # the shortest
    "slice store": ("make_slices", "results/kidney/slices/masks.npy"),
}
TIMING = ["images_per_s", "seconds"]


def without_timing(history) -> pd.DataFrame:
    return pd.DataFrame(history).drop(columns=TIMING)


def same_results(reference: Path, other: Path) -> list[str]:
    """Result files that differ (checkpoints by their tensors and metadata: torch's zip names
    its folder after the temporary file; histories without their timing columns)."""
    differing = []
    for path in sorted((reference / "results").rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(reference)
        copy = other / relative
        if path.suffix == ".pt":
            a, b = torch.load(path, weights_only=True), torch.load(copy, weights_only=True)
            meta_a, meta_b = dict(a["meta"]), dict(b["meta"])
            same = without_timing(meta_a.pop("history")).equals(
                without_timing(meta_b.pop("history"))
            )
            same = same and meta_a == meta_b
            same = same and all(
                torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"]
            )
        elif path.name.endswith(".history.csv"):
            same = without_timing(pd.read_csv(path)).equals(without_timing(pd.read_csv(copy)))
        else:
            same = path.read_bytes() == copy.read_bytes()
        if not same:
            differing.append(str(relative))
    return differing


def test_a_run_killed_at_any_stage_restarts_to_identical_results(demo, tmp_path):
    other = edited_copy(demo, tmp_path / "killed")
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(KILL_ON_PUBLISH)
    # --nolock: a killed run leaves its lock behind (a user runs `snakemake --unlock` first)
    config = ["--configfile", "config/demo.yaml", "--nolock"]
    for stage, (rule, output) in KILL_POINTS.items():
        env = dict(os.environ, SYNERGYSEG_TEST_KILL_AT=output)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(inject), env.get("PYTHONPATH")]))
        killed = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "2", *config]
            + ["--forcerun", rule, "--", output],
            cwd=other,
            env=env,
            capture_output=True,
            start_new_session=True,  # its own process group, which the kill takes down
            timeout=600,
        )
        assert killed.returncode == -signal.SIGKILL, f"{stage}: the run was not killed"
        rerun = snakemake(other, "--rerun-incomplete", *config, "--", output).stderr
        assert planned_jobs(rerun)[rule] == 1, f"{stage}: not redone"  # a run logs to stderr
    assert same_results(demo, other) == []

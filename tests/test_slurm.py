"""The SLURM profile on a real single-node SLURM (tests/slurm_cluster.py), as a user runs it.

One kidney-only demo goes through ``--profile profiles/slurm`` (plus the test-only overrides in
``tests/slurm_profile``, passed as ``--workflow-profile`` so the profile itself is untouched):

1. the submitting Snakemake is killed (SIGKILL) right after the first training job finished;
2. its orphaned jobs are cancelled and the folder unlocked, as the README's recipe says;
3. the run is started again and, while it runs, one prediction job is cancelled once (a
   node failure, a preemption), so Snakemake must resubmit it with more memory.

The tests then read the results and the scheduler's own records of every job.
Skipped, with the reason, where SLURM cannot be started (not installed, not root, ports taken).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_cluster import SlurmCluster, unavailable_reason
from workflow_runs import ROOT, copy_workflow, shell_environment

PROFILE = ROOT / "profiles" / "slurm"
TEST_OVERRIDES = ROOT / "tests" / "slurm_profile"
GPU_RULES = {"train_regime", "predict", "explain_images"}
RUN_TIMEOUT_S = 600

REASON = unavailable_reason()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(REASON is not None, reason=f"no SLURM here: {REASON}"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        running = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    except TimeoutError as err:
        pytest.skip(f"no SLURM here: {err}")
    try:
        yield running
    finally:
        running.stop()


def kidney_demo(workdir: Path) -> None:
    """The demo, kidney only, with short training and no depletion regime (its jobs are the
    same rules again): every rule of the DAG but deplete_split, 20 jobs."""
    config = yaml.safe_load((workdir / "config" / "demo.yaml").read_text())
    config["datasets"] = {"kidney": config["datasets"]["kidney"]}
    config["datasets"]["kidney"]["epochs"] = 2
    config["depletion"]["train_fractions"] = []
    config["pretrained"]["pretrain"].update(n_images=64, epochs=1)
    config["threads"]["slices"] = 4  # more than the node's 2 CPUs: the profile must cap it
    (workdir / "config" / "slurm.yaml").write_text(yaml.safe_dump(config))


def snakemake_command(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(PROFILE),
        "--workflow-profile",
        str(TEST_OVERRIDES),
        "--configfile",
        "config/slurm.yaml",
        *args,
    ]


def rule_of(job: dict[str, str]) -> str:
    """The rule a job ran, from the comment the executor plugin sets (rule_<name>[_wildcards_…])."""
    return re.sub(r"_wildcards_.*$", "", job.get("Comment", "")).removeprefix("rule_")


@dataclass
class Scenario:
    workdir: Path
    first_run: str = ""
    second_run: str = ""
    finished_regime: str = ""
    checkpoint_stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    cancelled_after_kill: list[str] = field(default_factory=list)
    cancelled_once: dict[str, str] = field(default_factory=dict)
    jobs: list[dict[str, str]] = field(default_factory=list)
    returncode: int | None = None


def wait_for_line(log: Path, pattern: str, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match.group(0)
        if process.poll() is not None:
            raise AssertionError(f"snakemake ended early:\n{log.read_text()[-5000:]}")
        time.sleep(0.5)
    raise AssertionError(f"no {pattern!r} within {timeout} s:\n{log.read_text()[-5000:]}")


def cancel_first_running(cluster: SlurmCluster, rule: str, stop: threading.Event, out: dict):
    """Cancel the first running job of ``rule`` once, as a failing node would end it."""
    while not stop.is_set():
        for job in cluster.jobs():
            if rule_of(job) == rule and job["JobState"] == "RUNNING":
                cluster.cancel(job["JobId"])
                out.update(job)
                return
        time.sleep(0.5)


@pytest.fixture(scope="module")
def scenario(cluster, tmp_path_factory) -> Scenario:
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm-demo"))
    kidney_demo(workdir)
    result = Scenario(workdir)
    env = cluster.env(shell_environment())

    # 1. a run whose submitting Snakemake dies right after the first training job finished
    log1 = workdir / "first_run.log"
    with open(log1, "w") as sink:
        first = subprocess.Popen(
            snakemake_command(), cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            wait_for_line(log1, r"Finished jobid: \d+ \(Rule: train_regime\)", first, 400)
            os.kill(first.pid, signal.SIGKILL)
        finally:
            if first.poll() is None:
                first.kill()
            first.wait()
    result.first_run = log1.read_text()
    records = {job["JobId"]: job for job in cluster.jobs()}  # before any record can expire
    finished = [
        record
        for record in records.values()
        if rule_of(record) == "train_regime" and record["JobState"] == "COMPLETED"
    ]
    assert finished, result.first_run[-3000:]
    result.finished_regime = finished[0]["Comment"].rsplit("_", 1)[-1]
    for path in sorted((workdir / "results/kidney/models" / result.finished_regime).rglob("*")):
        if path.is_file():
            result.checkpoint_stats[str(path)] = (path.stat().st_ino, path.stat().st_mtime_ns)

    # 2. the README's recipe: cancel the dead run's jobs, unlock, start again
    run_id = re.search(r"SLURM run ID: (\S+)", result.first_run).group(1)
    result.cancelled_after_kill = cluster.run(
        "squeue", "--noheader", f"--name={run_id}", "--format=%i"
    ).split()
    if result.cancelled_after_kill:
        cluster.run("scancel", f"--name={run_id}")
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--unlock", "--configfile", "config/slurm.yaml"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )

    # 3. the second run; one prediction job is cancelled once while it runs
    stop = threading.Event()
    watcher = threading.Thread(
        target=cancel_first_running, args=(cluster, "predict", stop, result.cancelled_once)
    )
    watcher.start()
    try:
        second = subprocess.run(
            snakemake_command(),
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    finally:
        stop.set()
        watcher.join()
        for job in cluster.jobs():  # whatever ran or still runs, as SLURM recorded it
            records[job["JobId"]] = job
        if any(job["JobState"] in ("PENDING", "RUNNING") for job in records.values()):
            cluster.run("scancel", "--partition=main")  # a failed run leaves nothing behind
    result.second_run = second.stdout + second.stderr
    result.returncode = second.returncode
    result.jobs = sorted(records.values(), key=lambda job: int(job["JobId"]))
    return result


def test_the_demo_runs_to_the_end_through_sbatch(scenario):
    assert scenario.returncode == 0, scenario.second_run[-6000:]
    results = scenario.workdir / "results"
    assert (results / "tables" / "table1.md").is_file()
    panels = {path.stem for path in (results / "figures" / "kidney").glob("*.png")}
    assert panels == {"segmentation", "gradcam", "synergy", "qq", "distributions", "training"}
    metrics = pd.read_csv(results / "kidney/metrics/split1/tii/rep1.csv")
    assert len(metrics) > 0 and metrics["dice"].dropna().between(0, 1).all()
    # every job but the local ones went through the scheduler as a batch job
    assert all(job["BatchFlag"] == "1" for job in scenario.jobs)
    submitted_rules = {rule_of(job) for job in scenario.jobs}
    assert {"make_phantom", "make_slices", "split_data", "score_predictions"} <= submitted_rules
    # batch jobs too keep compiled kernels in the project (their optimiser made the folder)
    assert (scenario.workdir / "resources" / "compile_cache").is_dir()


def test_every_gpu_rule_ran_with_a_gpu_request_and_logged_its_device(scenario):
    seen = set()
    for job in scenario.jobs:
        rule = rule_of(job)
        if rule in GPU_RULES:
            seen.add(rule)
            assert re.fullmatch(r"gres[:/]gpu:1", job.get("TresPerJob", "")), job
        else:
            assert "gpu" not in job.get("TresPerJob", "") + job.get("TresPerNode", ""), job
    assert seen == GPU_RULES
    # the demo says `device: auto`: on these fake GPUs the job trains on the CPU, and says so
    log = (scenario.workdir / "logs/train_regime/kidney/split2.log").read_text()
    import torch

    if not torch.cuda.is_available():  # fake GPU ids may name real ones on a GPU machine
        assert "device: cpu (config device: auto" in log
    assert "device: " in log


def test_no_job_asks_for_more_cpus_than_a_node_has(scenario):
    # config threads.slices: 4, on a node of 2 CPUs: the profile's max-threads caps the request,
    # so the job runs instead of pending forever
    slicing = [job for job in scenario.jobs if rule_of(job) == "make_slices"]
    assert [job["NumCPUs"] for job in slicing] == ["2"]
    assert all(int(job["NumCPUs"]) <= 2 for job in scenario.jobs)


def test_a_killed_run_resumes_without_retraining_finished_models(scenario):
    regime = scenario.finished_regime
    assert scenario.checkpoint_stats, "the finished training job left no checkpoints"
    for path, stat in scenario.checkpoint_stats.items():
        assert (Path(path).stat().st_ino, Path(path).stat().st_mtime_ns) == stat, path
    trained = [
        job["JobId"]
        for job in scenario.jobs
        if rule_of(job) == "train_regime" and job["Comment"].endswith(f"_{regime}")
    ]
    assert len(trained) == 1, f"{regime} was trained {len(trained)} times"
    assert "Nothing to be done" not in scenario.second_run


def test_a_failed_job_is_resubmitted_with_more_memory(scenario):
    assert scenario.cancelled_once, "no prediction job was caught running"
    comment = scenario.cancelled_once["Comment"]
    attempts = sorted(
        (
            job
            for job in scenario.jobs
            if job.get("Comment") == comment and job["JobId"] not in scenario.cancelled_after_kill
        ),
        key=lambda job: int(job["JobId"]),
    )
    assert [job["JobState"] for job in attempts] == ["CANCELLED", "COMPLETED"]
    memory = [int(job["MinMemoryNode"].rstrip("M")) for job in attempts]
    assert memory[1] > memory[0]


def test_a_job_that_can_never_be_scheduled_is_reported_not_waited_on(cluster, tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    kidney_demo(workdir)
    started = time.monotonic()
    result = subprocess.run(
        snakemake_command(
            "--set-resources", "make_phantom:mem_mb=100000000", "--", "resources/phantom/kidney"
        ),
        cwd=workdir,
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Requested node configuration is not available" in output, output[-3000:]
    assert time.monotonic() - started < 120

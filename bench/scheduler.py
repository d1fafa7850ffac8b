"""Snakemake's own CPU while a run waits on its GPU, with and without the workstation profile's
job rate.

Snakemake's scheduler (9.x) arms a re-evaluation timer, a thread that fires after the rate
limit's timespan (`--max-jobs-per-timespan`, default 100/1s), on every scheduling pass that
leaves jobs waiting, and every pass a timer triggers arms the next one. So each job that
finishes while others wait starts a chain of passes that lasts as long as anything waits, and
each pass re-reads the size of every input of every waiting job. On a workstation the GPU jobs
queue for one GPU for hours, after hundreds of download and data jobs have finished.

This runs a small workflow of that shape twice, with Snakemake's default and with the timespan
that profiles/workstation sets: short jobs (the downloads), the slice store made from all of
them, then GPU jobs that queue for one GPU (`resources: gpu=1`), each with the 14 inputs of a
training job. It prints wall time, Snakemake's CPU, its CPU per second while only GPU jobs are
left (sampled from /proc), its peak thread count, and that rate per finished short job
multiplied out to the ~350 jobs of the full protocol (one core at most: the scheduler is one
Python thread).

    python bench/scheduler.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FULL_PROTOCOL_JOBS = 349  # tests/test_plans.py: the full protocol's job graph

SNAKEFILE = """
QUICK, GPU_JOBS, SECONDS = {quick}, {gpu_jobs}, {seconds}
CODE = [f"code/{{k}}.py" for k in range(10)]  # a training job's package modules

rule all:
    input: expand("gpu/{{j}}.done", j=range(GPU_JOBS))

rule quick:  # a download
    output: "quick/{{i}}.txt"
    shell: "touch {{output}}"

rule store:  # the slice store, from every download
    input: expand("quick/{{i}}.txt", i=range(QUICK))
    output: "data/images.npy", "data/masks.npy", "data/weights.pth"
    shell: "touch {{output}}"

rule split:
    input: "data/images.npy"
    output: "data/split{{j}}.csv"
    shell: "touch {{output}}"

rule gpu:  # a training job, with a training job's 14 inputs, queued for the one GPU
    input: rules.store.output, "data/split{{j}}.csv", CODE
    output: "gpu/{{j}}.done"
    resources: gpu=1
    shell: "sleep {{SECONDS}}; touch {{output}}"
"""


def profile_timespan() -> str:
    """The `max-jobs-per-timespan` that profiles/workstation sets."""
    profile = yaml.safe_load((ROOT / "profiles" / "workstation" / "config.yaml").read_text())
    return profile["max-jobs-per-timespan"]


def count(folder: Path) -> int:
    return len(list(folder.glob("*"))) if folder.is_dir() else 0


def run(folder: Path, quick: int, gpu_jobs: int, rate: list[str]) -> dict:
    """Run the workflow in ``folder`` from nothing; sample Snakemake's CPU and threads, and
    its CPU per second from the last short job's end to the last GPU job's end."""
    for leftover in ("quick", "data", "gpu", ".snakemake"):
        subprocess.run(["rm", "-rf", str(folder / leftover)], check=True)
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--resources", "gpu=1"]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--quiet", "all", *rate],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    tick = os.sysconf("SC_CLK_TCK")
    cpu, threads, phase_start, phase_end = 0.0, 0, None, None
    while process.poll() is None:
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it has just exited
            break
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        threads = max(threads, int(fields[17]))
        now = time.perf_counter() - started
        if phase_start is None and count(folder / "quick") == quick:
            phase_start = (now, cpu)
        if phase_end is None and count(folder / "gpu") == gpu_jobs:
            phase_end = (now, cpu)
        time.sleep(0.5)
    stderr = process.stderr.read().decode()
    if process.wait() != 0:
        raise RuntimeError(f"the benchmark workflow failed:\n{stderr[-2000:]}")
    seconds = time.perf_counter() - started
    rate_in_gpu_phase = (phase_end[1] - phase_start[1]) / (phase_end[0] - phase_start[0])
    return {"seconds": seconds, "cpu": cpu, "threads": threads, "gpu_phase": rate_in_gpu_phase}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", type=int, default=200, help="short jobs before the GPU jobs")
    parser.add_argument("--gpu-jobs", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=15, help="each GPU job's duration")
    args = parser.parse_args()
    timespan = profile_timespan()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "Snakefile").write_text(
            SNAKEFILE.format(quick=args.quick, gpu_jobs=args.gpu_jobs, seconds=args.seconds)
        )
        (folder / "code").mkdir()
        for k in range(10):
            (folder / "code" / f"{k}.py").write_text(f"# module {k}\n")
        subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "2", "--dry-run"],
            cwd=folder,
            check=True,
            capture_output=True,
        )  # warm-up: Snakemake's imports from disk
        finished = args.quick
        print(
            f"{args.quick} short jobs, then {args.gpu_jobs} GPU jobs of {args.seconds} s "
            f"queued for one GPU; 2 cores"
        )
        base = None
        for label, rate in (
            ("Snakemake's default 100/1s (baseline)", []),
            (f"profiles/workstation {timespan}", ["--max-jobs-per-timespan", timespan]),
        ):
            result = run(folder, args.quick, args.gpu_jobs, rate)
            per_job = result["gpu_phase"] / finished
            projected = min(1.0, per_job * FULL_PROTOCOL_JOBS)
            base = base or result
            ratio = base["gpu_phase"] / result["gpu_phase"] if result["gpu_phase"] else float("inf")
            print(
                f"{label:40s} wall {result['seconds']:4.0f} s, Snakemake CPU "
                f"{result['cpu']:5.1f} s, {result['threads']:4d} threads at most; waiting on "
                f"the GPU: {result['gpu_phase']:.3f} CPU-s per s (x {ratio:.0f}), "
                f"{FULL_PROTOCOL_JOBS} jobs: ~{projected:.2f} core"
            )


if __name__ == "__main__":
    main()

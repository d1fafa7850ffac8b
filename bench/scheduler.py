"""Snakemake's own CPU while GPU jobs queue, with and without the workstation profile's job
rate.

Snakemake's scheduler (9.x) arms a re-evaluation timer, a thread that fires after the rate
limit's timespan (`--max-jobs-per-timespan`, default 100/1s), on every scheduling pass that
finds jobs ready to run, and a pass that a timer triggers arms the next one. A chain of passes
that a finished job starts therefore lasts until a pass finds nothing ready, and each pass
re-reads the size of every input of every ready job. On a workstation the full protocol's GPU
jobs queue for one GPU for hours, so every job that finishes meanwhile (training, prediction,
scoring, statistics: about a hundred) adds a chain that lasts to the end of the queue.

This runs a small workflow of that shape twice, with Snakemake's default and with the timespan
that profiles/workstation sets: short jobs (the downloads), the slice store made from all of
them, the split manifests, then GPU jobs with the 14 inputs of a training job, queued for one
GPU (`resources: gpu=1`). While they queue (from the moment all are ready until only the last
one is left) it samples Snakemake's CPU and thread count from /proc: its CPU per second, and
its mean thread count (the chains' timers and a few of Snakemake's own). The CPU per second
per thread, times the ~100 chains of the full protocol's GPU phase, is a lower bound of what
that phase costs (one core at most: the scheduler is one Python thread).

    python bench/scheduler.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FULL_PROTOCOL_CHAINS = 100  # jobs that finish while the full protocol's GPU jobs queue

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


def count(folder: Path, pattern: str = "*") -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


def run(folder: Path, gpu_jobs: int, rate: list[str]) -> dict:
    """Run the workflow in ``folder`` from nothing. Returns its wall time, Snakemake's CPU, and
    Snakemake's CPU per second and mean thread count while GPU jobs queue (from the moment the
    last split manifest exists until only the last GPU job is left)."""
    for leftover in ("quick", "data", "gpu", ".snakemake"):
        shutil.rmtree(folder / leftover, ignore_errors=True)
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--resources", "gpu=1"]
    log = folder / "snakemake.log"  # a file, not a pipe nobody reads until the end
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--quiet", *rate], cwd=folder, stdout=output, stderr=subprocess.STDOUT
        )
    tick = os.sysconf("SC_CLK_TCK")
    cpu, queued = 0.0, []  # (seconds, CPU seconds, threads) while GPU jobs queue
    while process.poll() is None:
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it has just exited
            break
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        ready = count(folder / "data", "split*.csv") == gpu_jobs
        if ready and count(folder / "gpu") < gpu_jobs - 1:
            queued.append((time.perf_counter() - started, cpu, int(fields[17])))
        time.sleep(0.5)
    if process.wait() != 0:
        raise RuntimeError(f"the benchmark workflow failed:\n{log.read_text()[-2000:]}")
    if len(queued) < 2:
        raise RuntimeError("the GPU queue was too short to sample: raise --seconds")
    (t0, cpu0, _), (t1, cpu1, _) = queued[0], queued[-1]
    return {
        "seconds": time.perf_counter() - started,
        "cpu": cpu,
        "queued_rate": (cpu1 - cpu0) / (t1 - t0),
        "queued_threads": sum(sample[2] for sample in queued) / len(queued),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", type=int, default=100, help="short jobs before the store")
    parser.add_argument("--gpu-jobs", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=8, help="each GPU job's duration")
    args = parser.parse_args()
    if args.quick < 1 or args.gpu_jobs < 3 or args.seconds < 2:
        parser.error("need --quick >= 1, --gpu-jobs >= 3 and --seconds >= 2")
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
        print(
            f"{args.quick} short jobs, then {args.gpu_jobs} GPU jobs of {args.seconds} s "
            f"queued for one GPU; 2 cores"
        )
        base = None
        for label, rate in (
            ("Snakemake's default 100/1s (baseline)", []),
            (f"profiles/workstation {timespan}", ["--max-jobs-per-timespan", timespan]),
        ):
            result = run(folder, args.gpu_jobs, rate)
            base = base or result
            queued = result["queued_rate"]
            ratio = base["queued_rate"] / queued if queued else float("inf")
            projected = min(1.0, queued / result["queued_threads"] * FULL_PROTOCOL_CHAINS)
            print(
                f"{label:38s} wall {result['seconds']:4.0f} s, Snakemake CPU "
                f"{result['cpu']:4.1f} s; while GPU jobs queue: {queued:.3f} CPU-s per s "
                f"(x {ratio:.1f}), {result['queued_threads']:.0f} threads; "
                f"{FULL_PROTOCOL_CHAINS} chains: >= {projected:.2f} core"
            )


if __name__ == "__main__":
    main()

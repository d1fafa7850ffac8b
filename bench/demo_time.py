"""Wall time of the demo (what `make demo` runs, installation excluded) from a fresh clone.

Clones the repository at HEAD (and, with --baseline REF, at an earlier commit, timed in the same
run), runs the workflow on config/demo.yaml with --cores 2 and writes the report as that
commit's Makefile does, with this environment's Snakemake, and prints each wall time, its job
count, the CPU time of Snakemake and every job together (steadier than the wall time on a
shared machine) and the ratio to the baseline.

    python bench/demo_time.py --baseline a5a98fe
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_demo(ref: str, cores: int) -> tuple[float, int, float]:
    """Wall seconds, job count and CPU seconds (user + system, every process) of the demo."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", ref], check=True)
        snakemake = [sys.executable, "-m", "snakemake", "--configfile", "config/demo.yaml"]
        report = ["--report", "results/report.html"]
        # What the Makefile at `ref` runs: older commits wrote the report in a second process.
        makefile = (clone / "Makefile").read_text(encoding="utf-8")
        in_one = "--report-after-run" in makefile
        after_run = [*report, "--report-after-run"] if in_one else []
        cpu_before = _children_cpu()
        started = time.perf_counter()
        run = subprocess.run(
            [*snakemake, "--cores", str(cores), *after_run],
            cwd=clone,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise RuntimeError(f"demo at {ref} failed:\n{run.stderr[-3000:]}")
        if not in_one:
            subprocess.run([*snakemake, *report], cwd=clone, check=True, capture_output=True)
        seconds = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        if not (clone / "results" / "report.html").is_file():
            raise RuntimeError(f"demo at {ref} wrote no report")
        jobs = re.findall(r"(\d+) of (\d+) steps \(100%\) done", run.stderr)
        return seconds, int(jobs[-1][1]) if jobs else -1, cpu


def _children_cpu() -> float:
    """CPU seconds of every finished child process (and theirs, once waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def describe(seconds: float, jobs: int, cpu: float) -> str:
    return (
        f"{seconds:6.0f} s ({seconds / 60:.1f} min), {jobs} jobs, "
        f"{cpu:5.0f} CPU-s ({cpu / seconds:.2f} cores busy)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="an earlier commit to time as well")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    head = timed_demo("HEAD", args.cores)
    line = f"demo at HEAD: {describe(*head)}"
    if args.baseline:
        base = timed_demo(args.baseline, args.cores)
        print(f"demo at {args.baseline} (baseline): {describe(*base)}   x 1.00")
        line += f"   x {base[0] / head[0]:4.2f} (CPU x {base[2] / head[2]:4.2f})"
    print(line)


if __name__ == "__main__":
    main()

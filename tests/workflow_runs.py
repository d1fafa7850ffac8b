"""Running the workflow from the tests: a fresh copy of the repository, Snakemake in it, the
job counts of a dry run, and the demo as `make demo` runs it (shared by the end-to-end files)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from synergyseg.workflow import COMPILE_CACHE_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ("Snakefile", "rules", "workflow", "config", "src", "report", "envs", "profiles")
DATASETS = ("skin", "prostate", "kidney")

# What `make demo` runs (after installing): the workflow, then the report from the same process.
DEMO_ARGS = (
    "--configfile",
    "config/demo.yaml",
    "--report",
    "results/report.html",
    "--report-after-run",
)


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(
                src, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(src, dest / part)
    return dest


def edited_copy(demo: Path, dest: Path) -> Path:
    """A copy of the finished demo to run Snakemake in: the shared demo itself is only read,
    so that one test's run never leaves a lock or a log in another test's copy."""
    shutil.copytree(demo, dest, symlinks=True)
    return dest


def shell_environment() -> dict[str, str]:
    """This process's environment as a shell passes it to `make demo`: without the compile
    cache variable (TORCHINDUCTOR_CACHE_DIR) that PyTorch sets here once any test imports its
    compiler, which the workflow would honour as the user's choice of compile cache."""
    return {name: value for name, value in os.environ.items() if name != COMPILE_CACHE_VARIABLE}


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        env=shell_environment(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def planned_jobs(output: str) -> Counter:
    """Rule → job count from the 'Job stats' table of a dry run."""
    counts = Counter()
    in_table = False
    for line in output.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
            continue
        if in_table:
            match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if match and match.group(1) != "total":
                counts[match.group(1)] = int(match.group(2))
            elif line.strip() == "" and counts:
                break
    return counts

"""Glue shared by the thin ``workflow/scripts`` and the Snakefile: logging set-up, and the
environment GPU jobs compile in (no Snakemake or torch imports here)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from synergyseg.config import ConfigError

COMPILE_CACHE_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"  # Triton's kernels go in a folder of it


def compile_cache_environment(folder: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment variable that keeps torch.compile's kernels in ``folder``, made absolute
    (the config's ``train.compile_cache``, a folder of the project), so that a training job
    reuses what an earlier job compiled on any node of a cluster; PyTorch's default, a folder
    in the node's temp dir, starts empty on every new node (and in every job, where a cluster
    gives each job a temp dir of its own). Nothing when ``folder`` is empty, or when the
    variable is set already: the user's choice wins.

    A folder that cannot be made or written is a config error now: every training job's
    optimiser imports the compiler, which creates the folder, so it would fail there, and a
    compile that cannot write its kernels fails inside the job.
    """
    if not folder or COMPILE_CACHE_VARIABLE in environ:
        return {}
    path = os.path.abspath(folder)
    existing = path
    while not os.path.exists(existing):  # the nearest folder that exists must take it
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        problem = "is not a folder" if not os.path.isdir(existing) else "cannot be written"
        raise ConfigError(
            "train.compile_cache",
            f"{existing} {problem}: torch.compile keeps the training jobs' kernels in {path}",
        )
    return {COMPILE_CACHE_VARIABLE: path}


def redirect_logging(log_path: str | Path | None, level: int = logging.INFO) -> None:
    """Send the package's log records (and uncaught errors) to the rule's log file and stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.WARNING,  # libraries' chatter (fontTools subsets every PDF font)
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.getLogger("synergyseg").setLevel(level)

    def log_uncaught(kind, value, traceback):
        logging.getLogger("synergyseg").error(
            "job failed: %s", value, exc_info=(kind, value, traceback)
        )

    sys.excepthook = log_uncaught

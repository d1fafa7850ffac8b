"""Glue shared by the thin ``workflow/scripts``: logging set-up (no Snakemake imports here)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


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

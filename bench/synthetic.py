"""Random slice stores and split manifests for the benchmarks (no raw data, any size)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synergyseg.store import StoreWriter


def random_store(folder: Path, n: int, height: int, width: int, channels: int) -> Path:
    """``n`` random uint8 slices (written 16 at a time) whose masks are their bright pixels."""
    rng = np.random.default_rng(0)
    with StoreWriter(folder, height, width, channels) as writer:
        for start in range(0, n, 16):
            count = min(16, n - start)
            images = rng.integers(0, 256, (count, height, width, channels), dtype=np.uint8)
            writer.append(images, (images[..., 0] > 160).astype(np.uint8))
    return folder


def split_manifest(path: Path, n: int, subset: str) -> Path:
    """A split manifest over store rows 0..n-1, all on one side, two clinical labels."""
    labels = np.where(np.arange(n) % 2 == 0, "a", "b")
    pd.DataFrame(
        {
            "slice_id": [f"s{i:05d}" for i in range(n)],
            "row": range(n),
            "label": labels,
            "subset": subset,
        }
    ).to_csv(path, index=False)
    return path

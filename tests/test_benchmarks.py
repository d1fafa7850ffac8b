"""The GPU acceptance script runs on the CPU at toy size, every section, so CI exercises it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synergyseg.model import vgg16_features

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_every_section_at_toy_size(tiny_split, tiny_store, tmp_path):
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copy(tiny_split, demo / "split1.csv")
    (demo / "store").symlink_to(tiny_store)
    features = vgg16_features(0.125, 4).state_dict()
    torch.save({f"features.{k}": v for k, v in features.items()}, demo / "encoder.pth")
    result = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--toy", "--demo", str(demo), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "sections failed: none" in result.stdout
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    for size in ("64x64", "96x64"):
        rows = results["training"][size]
        assert all(rows[path]["images_per_s"] > 0 for path in "abcd"), rows
        assert 0 < rows["c"]["mfu"] < 1
    for row in results["training profile"].values():  # batch 2 and the filling batch
        phases, kinds = row["phases_ms_per_step"], row["kinds_ms_per_step"]
        assert set(phases) == {"forward", "backward", "optimiser"}
        assert min(phases.values()) > 0 and kinds["convolution"] > 0
        # one total split two ways, within the wall time of the profiled steps
        assert sum(phases.values()) == pytest.approx(sum(kinds.values()))
        assert sum(phases.values()) <= 1.05 * row["ms_per_step"]
    inference = results["prediction and Grad-CAM"]
    assert inference["predict_images_per_s"] > 0 and inference["predict_network_images_per_s"] > 0
    assert set(results["demo run"]["dice"]) == {"tii1", "tii2", "lmi1", "lmi2"}
    assert results["projection"]["total"] > 0

"""Memory that does not grow with the number of images: 4x the images, not 2x the peak.

Each stage runs in this process on a store of 256x256 slices with a small block budget, so the
smaller case already spans several blocks; a stage that held every image (or every map) would
need about 4x as much memory for 4x the images. Peaks are private memory above the level at the
start (RssAnon, synergyseg.memory), which is what a job must be given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synergyseg import memory, predict, scoring, store
from synergyseg.memory import PeakMemory
from synergyseg.model import ModelSpec, VGGUNet
from synergyseg.store import StoreWriter
from synergyseg.training_data import TrainingData

SIDE, SMALL, LARGE = 256, 32, 128
BLOCK = 2 << 20  # 2 MB blocks: ~10 images with two models' maps


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    """LARGE gray slices of 256x256 (64 MB with masks) and one split per size."""
    folder = tmp_path_factory.mktemp("scale")
    rng = np.random.default_rng(0)
    with StoreWriter(folder / "store", SIDE, SIDE, 1) as writer:
        for _ in range(LARGE // 16):
            images = rng.integers(0, 256, (16, SIDE, SIDE), dtype=np.uint8)
            masks = (images > 200).astype(np.uint8)
            writer.append(images, masks)
    for n in (SMALL, LARGE):
        pd.DataFrame(
            {
                "slice_id": [f"s{i:04d}" for i in range(n)],
                "row": np.arange(n),
                "label": "x",
                "subset": ["test"] * (n - 8) + ["train"] * 8,
            }
        ).to_csv(folder / f"split{n}.csv", index=False)
    torch.manual_seed(0)
    checkpoints = []
    for k in range(2):
        model = VGGUNet(ModelSpec("default", 0.125))
        path = folder / f"model{k}.pt"
        meta = {"spec": {"model": {"variant": "default", "width": 0.125}}}
        torch.save({"state_dict": model.state_dict(), "meta": meta}, path)
        checkpoints.append(path)
    return folder, checkpoints


def peak(function) -> int:
    with PeakMemory() as measured:
        function()
    return measured.anon


def small_and_large_peaks(run) -> tuple[int, int]:
    run(SMALL)()  # warm up: imports, allocator pools, first-call caches
    return peak(run(SMALL)), peak(run(LARGE))


def assert_bounded(small: int, large: int) -> None:
    # 4x the images; well under 2x the memory (plus 6 MB for per-image rows and noise). Holding
    # every image would cost ~25 MB more at LARGE.
    assert large < 1.5 * small + (6 << 20), f"{small / 2**20:.1f} MB → {large / 2**20:.1f} MB"


def test_prediction_memory_does_not_grow_with_the_test_set(big_store, tmp_path, monkeypatch):
    folder, checkpoints = big_store
    monkeypatch.setattr(predict, "BLOCK_BYTES", BLOCK)

    def run(n):
        outs = [tmp_path / f"{n}_{k}.npz" for k in range(len(checkpoints))]
        return lambda: predict.predict_regime(
            checkpoints, folder / f"split{n}.csv", folder / "store", outs, batch_size=4
        )

    assert_bounded(*small_and_large_peaks(run))


def test_scoring_memory_does_not_grow_with_the_test_set(big_store, tmp_path, monkeypatch):
    folder, checkpoints = big_store
    monkeypatch.setattr(scoring, "BLOCK_BYTES", BLOCK)
    rng = np.random.default_rng(1)
    models = [("lmi", 1), ("tii", 1)]

    def run(n):
        split = pd.read_csv(folder / f"split{n}.csv")
        ids = split.loc[split.subset == "test", "slice_id"]
        files = {}
        for key in models:
            files[key] = tmp_path / f"p{n}_{key[0]}{key[1]}.npz"
            with predictions_writer(files[key], ids) as writer:
                for start in range(0, len(ids), 16):
                    count = min(16, len(ids) - start)
                    writer.write(rng.integers(0, 256, (count, SIDE, SIDE), dtype=np.uint8))
        outs = {key: tmp_path / f"m{n}_{key[0]}{key[1]}.csv" for key in models}
        return lambda: scoring.score_regime(
            files, folder / f"split{n}.csv", folder / "store", outs, tmp_path / f"s{n}.csv"
        )

    assert_bounded(*small_and_large_peaks(run))


def predictions_writer(path, ids):
    from synergyseg.predictions import PredictionWriter

    return PredictionWriter(path, ids, SIDE, SIDE)


def test_training_data_on_the_cpu_are_read_per_batch_not_copied(big_store):
    folder, _ = big_store
    rows = np.arange(LARGE)
    feed = TrainingData(store.SliceStore(folder / "store"), rows, torch.device("cpu"))
    assert not feed.resident

    def epoch():
        for start in range(0, LARGE, 4):
            feed.batch(torch.arange(start, start + 4))

    epoch()
    used = peak(epoch)
    assert used < 16 << 20, f"{used / 2**20:.0f} MB for a pass over {LARGE} images"


def test_memory_is_measured_where_the_kernel_reports_only_vmrss(tmp_path, monkeypatch):
    """gVisor's /proc/self/status has VmRSS but no RssAnon: the benchmarks measure anyway, with
    VmRSS as an upper bound, instead of failing before their first step."""
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmSize:\t 900000 kB\nVmRSS:\t  51200 kB\nVmData:\t 1 kB\n")
    monkeypatch.setattr(memory, "STATUS", status)
    assert memory.read_status() == {"VmRSS": 51200 * 1024, "RssAnon": 51200 * 1024, "RssFile": 0}
    with PeakMemory(interval=0.001) as peak:
        pass
    assert peak.anon_total == 51200 * 1024

"""A predict job's host side at the workflow's size, the device stood in: peak memory, time and
where the main thread waited, for HEAD and (with --baseline REV) an earlier commit's
``synergyseg/predict.py`` in the same run.

The job is the real ``predict_regime`` (ten models, 512x512 one-channel test images, 256 MB
blocks, the workflow's 8 compressor threads) with its network replaced by a stand-in that
fills each model's maps with a fixed pattern of noise-like probabilities (what the GPU
acceptance run's random models give: as slow to compress as trained models' maps,
bench/map_compression.py). What is left is the host's share of the job on the CPU's way: read
the store, hold two blocks of maps and compress them (a GPU's copies to and from the device,
and its pinned buffers, are not here). Each run is a fresh process, as a job is; HEAD and the
baseline alternate.

    python bench/predict_pipeline.py --baseline 1b2c3d4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from synthetic import random_store, split_manifest

from synergyseg.predict import WAITS  # HEAD's: how a report names each of the job's waits

ROOT = Path(__file__).resolve().parents[1]
MODELS, SIDE, THREADS = 10, 512, 8  # config/config.yaml's predict.threads

JOB = """
import importlib.util, json, sys
import numpy as np, torch
from synergyseg.memory import PeakMemory, release_freed_memory
module, work, models, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
spec = importlib.util.spec_from_file_location("predict_under_test", module)
predict = importlib.util.module_from_spec(spec)
spec.loader.exec_module(predict)
rng = np.random.default_rng(0)
pattern = torch.from_numpy(
    np.round(255 / (1 + np.exp(-rng.normal(0, 0.5, (16, 512, 512))))).astype(np.uint8)
)

calls = []

def fill(count, out):
    calls.append(count)
    for start in range(0, count, 16):
        out[start : start + min(16, count - start)] = pattern[: min(16, count - start)]

if hasattr(predict, "predict_block"):  # the network: computes into maps it is given
    def stand_in(models, autocasts, images, batch_size, device, maps):
        for m in maps:
            fill(len(images), m)
    predict.predict_block = stand_in
else:  # earlier commits: returns each model's maps on the host
    def stand_in(models, autocasts, images, batch_size, device):
        maps = [torch.empty((len(images), *images.shape[1:3]), dtype=torch.uint8) for _ in models]
        for m in maps:
            fill(len(images), m)
        return [m.numpy() for m in maps]
    predict.block_maps = stand_in
checkpoints = [f"{work}/m{k}.pt" for k in range(models)]
outs = [f"{work}/p{k}.npz" for k in range(models)]
release_freed_memory()
with PeakMemory() as peak:
    figures = predict.predict_regime(
        checkpoints, f"{work}/split.csv", f"{work}/store", outs, threads=threads
    )
print(json.dumps({"peak_mb": peak.anon / 2**20, "stood_in": sum(calls) // models, **figures}))
"""


def prepare(work: Path, images: int) -> None:
    """The store, its split and ten narrow checkpoints (loaded, never run)."""
    import torch

    from synergyseg.model import ModelSpec, VGGUNet

    random_store(work / "store", images, SIDE, SIDE, 1)
    split_manifest(work / "split.csv", images, "test")
    meta = {"spec": {"model": {"variant": "default", "width": 0.125}}, "precision": "fp32"}
    for k in range(MODELS):
        torch.save(
            {"state_dict": VGGUNet(ModelSpec("default", 0.125)).state_dict(), "meta": meta},
            work / f"m{k}.pt",
        )


def run(module: Path, work: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", JOB, str(module), str(work), str(MODELS), str(THREADS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    row = json.loads(done.stdout.strip().splitlines()[-1])
    if row["stood_in"] != row["images"]:  # the network ran, or part of it: not this benchmark
        raise RuntimeError(f"{module}: the stand-in took {row['stood_in']} of {row['images']}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a commit whose predict.py runs beside HEAD's")
    parser.add_argument("--images", type=int, default=372, help="test images (93 per block)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare(work, args.images)
        modules = {"HEAD": ROOT / "src" / "synergyseg" / "predict.py"}
        if args.baseline:
            source = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{args.baseline}:src/synergyseg/predict.py"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            modules[args.baseline] = work / "baseline_predict.py"
            modules[args.baseline].write_text(source)
        print(
            f"{args.images} test images of {SIDE}x{SIDE} x {MODELS} models, {THREADS} threads, "
            "the network stood in"
        )
        for repeat in range(args.repeats):
            for name, module in reversed(modules.items()):  # the baseline first
                row = run(module, work)
                waits = ", ".join(  # an earlier commit may time none of them
                    f"{label} {row[f'{what}_s']:.1f}"
                    for what, label in WAITS.items()
                    if f"{what}_s" in row
                )
                print(
                    f"  {name:8s} run {repeat + 1}: peak private {row['peak_mb']:5.0f} MB, "
                    f"{row['seconds']:5.1f} s ({row['images_per_s']:.0f} model-images/s); "
                    f"the main thread's seconds: {waits or 'not timed'}"
                )


if __name__ == "__main__":
    main()

"""How fast the prediction files' compressor (zlib level 1) takes trained models' maps and the
maps of the GPU acceptance run's stand-in models.

The GPU acceptance run times a predict job whose ten models have random weights and whose
images are noise; its maps are what the job compresses while the device computes. Whether
that makes its rate pessimistic depends on whether trained models' maps compress faster. This
compresses, in one process, the maps a finished demo wrote (``results/*/predictions``: trained
models, real phantoms) and the maps of a random full-width network on noise images (as
``bench/gpu_check.py`` makes them, here on the CPU in fp32), each repeated to the size of one
model's block of a GPU job (93 maps of 512x512: 24 MB), and prints MB/s and the compressed
share of each, and their ratio.

    make demo && python bench/map_compression.py
"""

from __future__ import annotations

import argparse
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from synergyseg.model import ModelSpec, VGGUNet
from synergyseg.predict import block_maps
from synergyseg.predictions import COMPRESSION_LEVEL, PredictionReader

BLOCK_BYTES = 93 * 512 * 512  # one model's maps of one block of a GPU predict job


def demo_maps(results: Path) -> np.ndarray:
    files = sorted(results.glob("*/predictions/*/*/*.npz"))
    if not files:
        raise SystemExit(f"no prediction files under {results}: run `make demo` first")
    maps = [block for f in files for block in PredictionReader(f).blocks(1 << 16)]
    return np.concatenate([m.reshape(-1) for m in maps])


def stand_in_maps(images: int, side: int) -> np.ndarray:
    torch.manual_seed(0)
    model = VGGUNet(ModelSpec("default", 1.0)).eval()
    noise = np.random.default_rng(0).integers(0, 256, (images, side, side, 1), dtype=np.uint8)
    fp32 = torch.autocast("cpu", enabled=False)
    return block_maps([model], [fp32], noise, 2, torch.device("cpu"))[0].reshape(-1)


def compression(maps: np.ndarray, repeats: int) -> tuple[float, float]:
    """Best MB/s over ``repeats`` and the compressed share, on one GPU block's worth."""
    data = np.resize(maps, BLOCK_BYTES).tobytes()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        packed = zlib.compress(data, COMPRESSION_LEVEL)
        best = min(best, time.perf_counter() - started)
    return len(data) / best / 1e6, len(packed) / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--images", type=int, default=4, help="stand-in maps of 512x512")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rates = {}
    for name, maps in (
        ("the demo's trained models", demo_maps(args.results)),
        ("gpu_check's random models on noise", stand_in_maps(args.images, 512)),
    ):
        saturated = np.mean((maps == 0) | (maps == 255))
        rates[name], share = compression(maps, args.repeats)
        print(
            f"{name:36s} {rates[name]:6.1f} MB/s, compressed to {share:.2f} "
            f"({saturated:.0%} of pixels at 0 or 255, {maps.size / 1e6:.1f} M pixels)"
        )
    trained, stand_in = rates.values()
    print(f"trained against stand-in: x {trained / stand_in:.2f}")


if __name__ == "__main__":
    main()

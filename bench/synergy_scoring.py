"""Scoring a block of test images: the ten models' maps, then the synergy combinations with
their binary masks scored from counts alone (HEAD) or through the 0/255 histogram path (the
baseline), on the same data in one process. Prints ms per image, the ratio, and whether the
two synergy tables are identical.

    python bench/synergy_scoring.py --images 32 --size 512
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import numpy as np

from synergyseg import synergy
from synergyseg.masks import THRESHOLD
from synergyseg.metrics import image_metrics


def histogram_path(masks, truth):
    """The baseline: binary masks scored as uint8 maps of 0 and 255, histograms and all."""
    return image_metrics(np.asarray(masks).astype(np.uint8) * np.uint8(255), truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.images, args.size, args.size)
    truth = rng.random(shape) < 0.1
    probs = {  # maps that agree with the reference on most pixels, as trained models' do
        (init, rep): np.where(truth ^ (rng.random(shape) < 0.05), 230, 20).astype(np.uint8)
        for init in ("lmi", "tii")
        for rep in range(1, args.replicates + 1)
    }

    def models():
        return {key: image_metrics(block, truth) for key, block in probs.items()}

    tables = models()
    binary = {
        init: np.stack([probs[(init, r)] >= THRESHOLD for r in range(1, args.replicates + 1)])
        for init in ("lmi", "tii")
    }
    singles = {init: [tables[(init, r)] for r in range(1, args.replicates + 1)] for init in binary}

    def best_of(function):
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = function()
            times.append(time.perf_counter() - started)
        return min(times) / args.images * 1e3, result

    models_ms, _ = best_of(models)
    with mock.patch.object(synergy, "binary_mask_metrics", histogram_path):
        base_ms, base = best_of(lambda: synergy.synergy_block(binary, truth, singles))
    head_ms, head = best_of(lambda: synergy.synergy_block(binary, truth, singles))
    same = all(head[name].equals(base[name]) for name in base)
    print(f"{args.images} images of {args.size}x{args.size}, {2 * args.replicates} models")
    print(f"  the models' metrics                {models_ms:7.1f} ms per image")
    print(f"  synergy, 0/255 histograms (base)   {base_ms:7.1f} ms per image   x 1.00")
    ratio = base_ms / head_ms
    print(f"  synergy, counts (HEAD)             {head_ms:7.1f} ms per image   x {ratio:.2f}")
    print(f"  scoring job per image: {models_ms + base_ms:.1f} -> {models_ms + head_ms:.1f} ms")
    print(f"  synergy tables identical: {same}")


if __name__ == "__main__":
    main()

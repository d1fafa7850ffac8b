"""Per-image AUROC: synergyseg's vectorised histogram method vs a scikit-learn loop.

Both run on the same random uint8 maps in one process; the script prints each time, the
speed-up ratio and the largest absolute difference between the two.

    python bench/auroc.py --images 200 --height 416 --width 608
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from synergyseg.metrics import auroc_from_histograms, score_histograms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--height", type=int, default=416)
    parser.add_argument("--width", type=int, default=608)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    masks = rng.random((args.images, args.height, args.width)) < 0.2
    probs = np.clip(masks * 120 + rng.normal(70, 50, masks.shape), 0, 255).astype(np.uint8)

    def ours():
        return auroc_from_histograms(*score_histograms(probs, masks))

    def sklearn_loop():
        return np.array(
            [roc_auc_score(m.ravel(), p.ravel()) for p, m in zip(probs, masks, strict=True)]
        )

    timings = {}
    results = {}
    for name, fn in (
        ("scikit-learn loop (baseline)", sklearn_loop),
        ("histograms, blocked bincount", ours),
    ):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            results[name] = fn()
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    baseline = timings["scikit-learn loop (baseline)"]
    print(f"{args.images} images of {args.width}x{args.height}, best of {args.repeats}")
    for name, seconds in timings.items():
        print(f"{name:30s} {seconds:8.3f} s   x{baseline / seconds:7.1f}")
    diff = np.max(
        np.abs(results["histograms, blocked bincount"] - results["scikit-learn loop (baseline)"])
    )
    print(f"max |difference| {diff:.2e}")


if __name__ == "__main__":
    main()

"""Grad-CAM of a batch in one backward pass vs one image at a time.

Both compute the maps of both target classes for the same random images with the same
VGG16-UNet in one process; the script prints each time, the ratio against the per-image
baseline and the largest absolute difference between the two results.

    python bench/grad_cam.py --images 8 --model-width 0.5 --height 208 --width-px 304
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from synergyseg.cam import model_cams
from synergyseg.model import ModelSpec, VGGUNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--model-width", type=float, default=0.5)
    parser.add_argument("--height", type=int, default=208)
    parser.add_argument("--width-px", type=int, default=304)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = VGGUNet(ModelSpec("default", args.model_width)).eval()
    # store rows, as model_cams takes them: (N, H, W, C) uint8
    images = torch.randint(0, 256, (args.images, args.height, args.width_px, 3), dtype=torch.uint8)

    def run(batch_size: int):
        return model_cams(model, images, None, "predicted", batch_size, device)[0]

    timings, results = {}, {}
    for name, batch_size in (("one image at a time (baseline)", 1), ("batched", args.batch)):
        run(batch_size)  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            results[name] = run(batch_size)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    baseline = timings["one image at a time (baseline)"]
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.images} images of {args.width_px}x{args.height}, width {args.model_width}, "
        f"batch {args.batch}, best of {args.repeats}"
    )
    for name, seconds in timings.items():
        print(f"{name:32s} {seconds:8.3f} s   x{baseline / seconds:5.2f}")
    diff = np.max(np.abs(results["batched"] - results["one image at a time (baseline)"]))
    print(f"max |difference| {diff:.2e}")


if __name__ == "__main__":
    main()

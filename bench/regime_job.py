"""One job training a regime's models side by side against one job per model, on this device.

Both run as fresh processes, as Snakemake runs them: the separate jobs each start Python and
PyTorch, open the data and train one model; the regime job does that once and trains all the
models (synergyseg.lanes). Prints seconds per trained image of each and their ratio (the
baseline, separate jobs, measured in the same run). The models are the same either way (tested
bit for bit on the CPU).

    python bench/regime_job.py                      # demo size: 4 models, 96x64, width 0.125
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import random_store, split_manifest

JOB = """
import sys
from synergyseg.model import ModelSpec
from synergyseg.train import TrainSpec, train_models
folder, reps = sys.argv[1], [int(r) for r in sys.argv[2].split(",")]
epochs, model = int(sys.argv[3]), ModelSpec("default", float(sys.argv[4]), 2, 0.1)
specs = [TrainSpec("bench", "split1", "lmi", r, 1, epochs, model, 4, monitor_images=8)
         for r in reps]
outs = [f"{folder}/rep{r}.pt" for r in reps]
train_models(specs, f"{folder}/split.csv", f"{folder}/store", outs,
             [o.replace(".pt", ".csv") for o in outs], device=sys.argv[5], threads=1,
             state_every_s=600)  # the workflow's default train.resume_state_minutes
"""


def job(folder: Path, reps: list[int], epochs: int, width: float, device: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            JOB,
            str(folder),
            ",".join(map(str, reps)),
            str(epochs),
            str(width),
            device,
        ],
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--size", default="96x64")
    parser.add_argument("--model-width", type=float, default=0.125)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        random_store(folder / "store", args.images, height, width, 3)
        split_manifest(folder / "split.csv", args.images, "train")
        reps = list(range(1, args.models + 1))
        separate = sum(job(folder, [r], args.epochs, args.model_width, args.device) for r in reps)
        together = job(folder, reps, args.epochs, args.model_width, args.device)
    images = args.models * args.epochs * (args.images - args.images % 4)
    print(
        f"{args.models} models x {args.epochs} epochs x {args.images} images of {args.size}, "
        f"width {args.model_width}, device {args.device}, one thread"
    )
    print(f"one job per model (baseline)   {separate / images * 1000:7.2f} ms per image   x 1.00")
    print(
        f"one job per regime             {together / images * 1000:7.2f} ms per image   "
        f"x {separate / together:4.2f}"
    )


if __name__ == "__main__":
    main()

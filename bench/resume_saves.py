"""What saving resume states costs the full protocol: a regime's ten full-width models' states
saved as a training job saves them (host copy, serialisation, flush to disk), timed here, and
the GPU-hours the full protocol spends on them when saved after every epoch (the baseline) or
every ``train.resume_state_minutes`` and after the last epoch, at GPU training rates given on
the command line (the latest measured ones by default, docs/benchmarks.md). The GPU waits
while a job saves, so these hours add to the projection.

    python bench/resume_saves.py --dir results/bench_states
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import gpu_check  # bench/ is this script's folder, so its siblings import directly
import torch

from synergyseg.model import ModelSpec


def ten_states_seconds(folder: Path, models: int, repeats: int) -> tuple[float, float]:
    """The fastest of ``repeats`` saves of ``models`` full-width states, and their MB."""
    lanes = [
        gpu_check.new_lane(ModelSpec("default", 1.0), torch.device("cpu"), k) for k in range(models)
    ]
    for lane in lanes:  # one step, so that the optimiser holds its state, as after an epoch
        images = torch.rand(1, 3, 64, 64).to(memory_format=torch.channels_last)
        lane.model(images).sum().backward()
        lane.optimiser.step()
        lane.next_epoch = 2
    timed = [gpu_check.save_lanes(lanes, folder) for _ in range(repeats)]
    return min(seconds for seconds, _ in timed), timed[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to save (default: a temp)")
    parser.add_argument("--models", type=int, default=gpu_check.MODELS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(  # H100, fused models compiled (run B, docs/benchmarks.md)
        "--rates", nargs=2, type=float, default=(504.2, 518.9), help="img/s at 512x512, 608x416"
    )
    parser.add_argument("--predict", type=float, default=505.0, help="prediction img/s")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        seconds, megabytes = ten_states_seconds(folder, args.models, args.repeats)
    finally:
        shutil.rmtree(folder)
    print(
        f"{args.models} full-width resume states, {megabytes:.0f} MB: saved in {seconds:.2f} s "
        f"({megabytes / seconds:.0f} MB/s)"
    )
    fused = {  # set-up not timed here: left out of both
        size: {"d": {"images_per_s": rate, "setup_s": 0.0, "save_s": seconds}}
        for size, rate in zip(("512x512", "608x416"), args.rates, strict=True)
    }
    gpu_check.RESULTS = {
        "training": fused,
        "prediction and Grad-CAM": {"predict_images_per_s": args.predict},
    }
    with contextlib.redirect_stdout(io.StringIO()):
        projection = gpu_check.projection_section(list(fused), toy=False)
    every_epoch, scheduled = projection["saving_every_epoch_hours"], projection["saving_hours"]
    rest = projection["total"] - scheduled
    print(f"full protocol at {args.rates[0]:.0f}/{args.rates[1]:.0f} img/s: {rest:.2f} GPU-hours")
    print(
        f"  resume saves after every epoch (baseline): {every_epoch:5.2f} GPU-hours  x 1.00\n"
        f"  every {gpu_check.RESUME_STATE_MINUTES} min and after the last epoch:  "
        f"{scheduled:5.2f} GPU-hours  x {every_epoch / scheduled:.2f}"
    )


if __name__ == "__main__":
    main()

"""Peak memory and time per image of every stage, measured here and projected to paper size.

Each stage's real code runs in a fresh process on synthetic data with the study's image sizes
(512x512 CT slices, 608x416 photographs) at two image counts, n and 4n. Peak private memory
(RssAnon: what a job must be given; the slice store's pages are shared page cache) is sampled
every 2 ms. A straight line through the two peaks gives the memory per image, which is
projected to the study's image counts and printed beside the ``mem_mb`` the rule declares
there (synergyseg.resources). Models are narrow (width 0.125) to keep CPU time low; the weights
of ten full-width VGG16-UNets (10 x 49 MB) are added to the GPU rules' projections.

    python bench/scale.py            # about five minutes on two cores
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from synergyseg import resources as need

MB = 2**20
# KiTS19 split at 80:20 and the depletion regimes: training and test images per job
PAPER = {
    "kidney split (9,085 test)": 9085,
    "kidney train10 (40,882 test)": 40882,
}
FULL_WIDTH_MODEL_MB = 49  # 12.3 M float32 parameters
SLICE_THREADS = 8  # threads.slices of config/config.yaml


def _child(stage: str, n: int, work: Path) -> dict:
    """Run one stage on n images in this (fresh) process; peak RssAnon above the start."""
    import pandas as pd
    import torch

    from synergyseg.memory import PeakMemory, read_status

    torch.set_num_threads(1)
    side = 512
    rng = np.random.default_rng(0)
    result: dict = {"stage": stage, "n": n}

    def store(count, channels=1, height=side, width=side):
        from synergyseg.store import StoreWriter

        folder = work / f"store_{count}_{channels}_{height}"
        if not folder.exists():
            with StoreWriter(folder, height, width, channels) as writer:
                for start in range(0, count, 16):
                    k = min(16, count - start)
                    images = rng.integers(0, 256, (k, height, width, channels), dtype=np.uint8)
                    writer.append(images, (images[..., 0] > 200).astype(np.uint8))
        return folder

    def split(count, subset="test"):
        path = work / f"split_{count}.csv"
        pd.DataFrame(
            {
                "slice_id": [f"s{i:05d}" for i in range(count)],
                "row": range(count),
                "label": rng.choice(["a", "b"], count),
                "subset": subset,
            }
        ).to_csv(path, index=False)
        return path

    def models(count):
        from synergyseg.model import ModelSpec, VGGUNet

        paths = []
        for k in range(count):
            path = work / f"model{k}.pt"
            if not path.exists():
                meta = {"spec": {"model": {"variant": "default", "width": 0.125}}}
                model = VGGUNet(ModelSpec("default", 0.125))
                torch.save({"state_dict": model.state_dict(), "meta": meta}, path)
            paths.append(path)
        return paths

    if stage == "slices":
        import SimpleITK as sitk

        from synergyseg.data.slicing import SliceSettings, make_slices
        from synergyseg.data.sources import VolumeRecord

        case = work / f"case_{n}"
        case.mkdir(exist_ok=True)
        hu = rng.integers(-1000, 1000, (n, side, side)).astype(np.int16)
        sitk.WriteImage(sitk.GetImageFromArray(hu), str(case / "imaging.nii.gz"))
        seg = (hu > 900).astype(np.uint8)
        sitk.WriteImage(sitk.GetImageFromArray(seg), str(case / "segmentation.nii.gz"))
        record = VolumeRecord("case_00000", case / "imaging.nii.gz", case / "segmentation.nii.gz")
        run = lambda: make_slices(  # noqa: E731
            "kits19", [record], SliceSettings(side, side), work / f"out{n}", work / f"m{n}.csv"
        )
        result["pixels"] = n * side * side
    elif stage == "train":
        from synergyseg.store import SliceStore
        from synergyseg.training_data import TrainingData, epoch_batches

        feed = TrainingData(SliceStore(store(n)), np.arange(n), torch.device("cpu"))

        def run():
            plan = epoch_batches(n, 2, None, 1, 1)
            for index in plan.index:
                feed.batch(index)
    elif stage == "predict":
        from synergyseg import predict

        checkpoints, folder, csv = models(2), store(n), split(n)
        outs = [work / f"p{n}_{k}.npz" for k in range(2)]
        run = lambda: predict.predict_regime(checkpoints, csv, folder, outs, 8)  # noqa: E731
    elif stage == "score":
        from synergyseg.predictions import PredictionWriter
        from synergyseg.scoring import score_regime

        folder, csv = store(n), split(n)
        keys = [(init, rep) for init in ("lmi", "tii") for rep in range(1, 6)]
        files = {}
        for key in keys:
            files[key] = work / f"s{n}_{key[0]}{key[1]}.npz"
            with PredictionWriter(files[key], [f"s{i:05d}" for i in range(n)], side, side) as w:
                for start in range(0, n, 16):
                    k = min(16, n - start)
                    w.write(rng.integers(0, 256, (k, side, side), dtype=np.uint8))
        outs = {key: work / f"m{n}_{key[0]}{key[1]}.csv" for key in keys}
        run = lambda: score_regime(files, csv, folder, outs, work / f"syn{n}.csv")  # noqa: E731
    elif stage == "statistics":
        from synergyseg.stats import StatsSettings, regime_statistics

        paths = []
        for init in ("lmi", "tii"):
            for rep in range(1, 6):
                folder = work / f"stats{n}" / init
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"rep{rep}.csv"
                pd.DataFrame(
                    {
                        "slice_id": [f"s{i:05d}" for i in range(n)],
                        "label": rng.choice(["kidney", "no kidney"], n),
                        **{c: rng.integers(0, 10**5, n) for c in ("tp", "fp", "tn", "fn")},
                        **{
                            m: rng.random(n)
                            for m in ("auroc", "dice", "sensitivity", "specificity", "precision")
                        },
                    }
                ).to_csv(path, index=False)
                paths.append(str(path))
        run = lambda: regime_statistics(paths, StatsSettings(bootstrap_resamples=200))  # noqa: E731
    else:
        raise ValueError(stage)

    result["base_mb"] = read_status()["RssAnon"] / MB
    started = time.perf_counter()
    with PeakMemory() as peak:
        run()
    result["seconds"] = time.perf_counter() - started
    result["peak_mb"] = peak.anon / MB
    result["total_mb"] = peak.anon_total / MB
    return result


def measure(stage: str, n: int, work: Path) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", stage, str(n), str(work)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


STAGES = {  # stage: (n, unit of n)
    "slices": (24, "slices of 512x512 in one CT case"),
    "train": (64, "training images of 512x512 (one pass, data read per batch)"),
    "predict": (16, "test images of 512x512, 2 models"),
    "score": (32, "test images of 512x512, 10 models"),
    "statistics": (2000, "per-image rows x 10 models"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("STAGE", "N", "WORK"))
    parser.add_argument("--stages", nargs="+", default=list(STAGES))
    args = parser.parse_args()
    if args.child:
        stage, n, work = args.child
        print(json.dumps(_child(stage, int(n), Path(work))))
        return
    slopes = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"{'stage':11s} {'n':>6s} {'4n':>6s}  peak above start (MB)  per image  time/image")
        for stage in args.stages:
            n, unit = STAGES[stage]
            small, large = measure(stage, n, work), measure(stage, 4 * n, work)
            slope = (large["peak_mb"] - small["peak_mb"]) / (3 * n)
            slopes[stage] = (small, large, slope)
            print(
                f"{stage:11s} {n:6d} {4 * n:6d}  {small['peak_mb']:8.1f} → {large['peak_mb']:8.1f}"
                f"  {slope * 1024:7.1f} kB  {large['seconds'] / (4 * n) * 1000:8.2f} ms"
                f"   ({unit}; job starts at {large['base_mb']:.0f} MB)"
            )
    project(slopes)


def project(slopes: dict) -> None:
    """Projected peak at paper size beside what each rule declares there."""
    print("\nprojected at paper size (MB; declared = synergyseg.resources, attempt 1)")

    def row(rule, case, projected, declared):
        verdict = "ok" if projected <= declared else "OVER"
        print(f"  {rule:18s} {case:34s} {projected:9.0f} {declared:9.0f}  {verdict}")

    if "slices" in slopes:
        small, _, slope = slopes["slices"]
        per_pixel = slope * MB / (512 * 512)
        for slices in (300, 1000):
            pixels = slices * 512 * 512
            projected = small["total_mb"] + per_pixel * pixels / MB * (SLICE_THREADS + 1)
            declared = need.slices_mem_mb(pixels, SLICE_THREADS)
            row("make_slices", f"{slices}-slice case, {SLICE_THREADS} threads", projected, declared)
        print(f"  (slicing holds {per_pixel:.1f} bytes per voxel of a case)")
    if "train" in slopes:
        small, large, slope = slopes["train"]
        models_mb = 10 * FULL_WIDTH_MODEL_MB * 4  # weights, 2 optimiser states, a saved copy
        for case, _ in PAPER.items():
            projected = large["total_mb"] + models_mb + 560
            row(
                "train_regime",
                case.split(" (")[0] + " (host, CPU)",
                projected,
                need.train_mem_mb(10, gpu=False),
            )
    if "predict" in slopes:
        small, large, slope = slopes["predict"]
        for case, n in PAPER.items():
            projected = large["total_mb"] + slope * max(0, n - 4 * small["n"]) * 5
            projected += 10 * FULL_WIDTH_MODEL_MB
            row("predict", case, projected, need.predict_mem_mb(10, 512 * 512, 1, gpu=False))
    if "score" in slopes:
        small, large, slope = slopes["score"]
        for case, n in PAPER.items():
            projected = large["total_mb"] + slope * max(0, n - 4 * small["n"])
            row("score_predictions", case, projected, need.score_mem_mb(n, 10))
    if "statistics" in slopes:
        small, large, slope = slopes["statistics"]
        for case, n in PAPER.items():
            projected = large["total_mb"] + slope * max(0, n - 4 * small["n"])
            csv_mb = n * 10 * 160 / MB  # ~160 bytes per metric row on disk
            row("compute_statistics", case, projected, need.table_mem_mb(csv_mb))


if __name__ == "__main__":
    main()

"""Peak memory and time per image of every stage, measured here and projected to paper size.

Each stage's real code runs in a fresh process on synthetic data at the study's CT slice size
(512x512) at two image counts, n and k·n. Peak private memory (RssAnon: what a job must be
given; the slice store's pages are shared page cache) is sampled every 2 ms. The line through
the two peaks gives the memory per image, which is projected to the study's image counts and
printed beside the ``mem_mb`` the rule declares there (synergyseg.resources).

Prediction and scoring work in blocks of images (256 MB in the workflow); here they run with
32 MB blocks so that both counts span several blocks (their per-image memory is then what the
result rows cost), and once more with 8 MB blocks to measure the memory per MB of block budget,
which projects them to 256 MB blocks. Models are narrow (width 0.125) to keep CPU time low; the
weights of ten full-width VGG16-UNets (10 x 49 MB) are added to the projections.

    python bench/scale.py            # about four minutes on two cores
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
from synthetic import random_store, split_manifest

from synergyseg import resources as need

MB = 2**20
# KiTS19 split at 80:20 and the depletion regimes: training and test images per job
PAPER = {
    "kidney split (9,085 test)": 9085,
    "kidney train10 (40,882 test)": 40882,
}
FULL_WIDTH_MODEL_MB = 49  # 12.3 M float32 parameters
GLEASON_ROWS, GLEASON_WIDTH = 128, 2048  # a Gleason core grows by rows of this size
GLEASON_CORE_PIXELS = 5120 * 5120
SLICE_THREADS = 8  # threads.slices of config/config.yaml
# result rows kept per test image: slice ids in ten prediction writers; ten models' metric rows
# (9 numbers) and eight synergy rows (3 numbers), plus the split row — rounded well up
ROW_KB = {"predict": 1.0, "score": 2.0}


def _child(stage: str, n: int, work: Path, block_mb: int) -> dict:
    """Run one stage on n images in this (fresh) process, with the stage's block budget set
    to ``block_mb``; peak RssAnon above the start."""
    import pandas as pd
    import torch

    from synergyseg import predict as predict_module
    from synergyseg import scoring as scoring_module
    from synergyseg.memory import PeakMemory, read_status

    predict_module.BLOCK_BYTES = scoring_module.BLOCK_BYTES = block_mb * MB

    torch.set_num_threads(1)
    side = 512
    rng = np.random.default_rng(0)
    result: dict = {"stage": stage, "n": n, "block_mb": block_mb}

    def store(count):
        folder = work / f"store_{count}"
        return folder if folder.exists() else random_store(folder, count, side, side, 1)

    def split(count):
        return split_manifest(work / f"split_{count}.csv", count, "test")

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
    elif stage == "gleason":
        import cv2

        from synergyseg.data.slicing import SliceSettings, slice_gleason
        from synergyseg.data.sources import ImageRecord

        height, width = n * GLEASON_ROWS, GLEASON_WIDTH
        core = work / f"gleason_{n}"
        core.mkdir(exist_ok=True)
        cv2.imwrite(str(core / "core.jpg"), rng.integers(0, 255, (height, width, 3), np.uint8))
        maps = []
        for k, grade in enumerate((1, 3, 4, 5, 0, 3)):  # six raters who disagree on grades
            rater = np.zeros((height, width), np.uint8)
            rater[:, : width // 2] = grade
            cv2.imwrite(str(core / f"map{k}.png"), rater)
            maps.append(core / f"map{k}.png")
        record = ImageRecord("core", core / "core.jpg", tuple(maps), "core")
        settings = SliceSettings(608, 416, consensus="staple")  # the heavier method
        run = lambda: slice_gleason(record, settings)  # noqa: E731
        result["pixels"] = height * width
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

        checkpoints, folder, csv = models(1), store(n), split(n)
        outs = [work / f"p{n}_{k}.npz" for k in range(1)]
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
        # the rule's settings: 2,000 bootstrap resamples, whose memory grows with the images
        run = lambda: regime_statistics(paths, StatsSettings())  # noqa: E731
    elif stage == "showcase":
        from synergyseg.showcase import ShowcaseSettings, choose_from_synergy
        from synergyseg.synergy import COMBINATIONS, SYNERGY_METRICS

        combinations = list(COMBINATIONS)
        path = work / f"synergy{n}.csv"
        pd.DataFrame(
            {
                "slice_id": np.repeat([f"s{i:05d}" for i in range(n)], len(combinations)),
                "label": np.repeat(rng.choice(["kidney", "no kidney"], n), len(combinations)),
                "combination": combinations * n,
                **{m: rng.random(n * len(combinations)) for m in SYNERGY_METRICS},
            }
        ).to_csv(path, index=False)
        result["csv_mb"] = path.stat().st_size / MB

        def run():  # what choose_figure_images runs
            choose_from_synergy(path, ShowcaseSettings())
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


def measure(stage: str, n: int, work: Path, block_mb: int = 256) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", stage, str(n), str(work), str(block_mb)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


STAGES = {  # stage: (n, times n for the second measurement, unit of n)
    "slices": (24, 4, "slices of 512x512 in one CT case"),
    "gleason": (8, 4, "128-pixel rows of a 2048-wide Gleason core, 6 rater maps, STAPLE"),
    "train": (64, 4, "training images of 512x512 (one pass, data read per batch)"),
    "predict": (80, 4, "test images of 512x512, 1 model"),
    "score": (128, 4, "test images of 512x512, 10 models"),
    "statistics": (2000, 4, "per-image rows x 10 models"),
    "showcase": (2000, 4, "test images x 8 synergy rows"),
}
BLOCKED = ("predict",)  # measured with 32 MB blocks, and with 8 MB blocks once more
SMALL_BLOCK_MB, LARGER_BLOCK_MB, REAL_BLOCK_MB = 8, 32, 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, metavar=("STAGE", "N", "WORK", "BLOCK_MB"))
    parser.add_argument("--stages", nargs="+", default=list(STAGES))
    args = parser.parse_args()
    if args.child:
        stage, n, work, block_mb = args.child
        print(json.dumps(_child(stage, int(n), Path(work), int(block_mb))))
        return
    measured = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"{'stage':11s} {'n':>6s} {'k·n':>6s}  peak above start (MB)  per image  time/image")
        for stage in args.stages:
            n, times, unit = STAGES[stage]
            block = LARGER_BLOCK_MB if stage in BLOCKED else REAL_BLOCK_MB
            small, large = measure(stage, n, work, block), measure(stage, times * n, work, block)
            slope = (large["peak_mb"] - small["peak_mb"]) / ((times - 1) * n)
            measured[stage] = {"small": small, "large": large, "slope": slope}
            blocks = f", {block} MB blocks" if stage in BLOCKED else ""
            print(
                f"{stage:11s} {n:6d} {times * n:6d}  "
                f"{small['peak_mb']:8.1f} → {large['peak_mb']:8.1f}"
                f"  {slope * 1024:7.1f} kB  {large['seconds'] / (times * n) * 1000:8.2f} ms"
                f"   ({unit}{blocks}; job starts at {large['base_mb']:.0f} MB)"
            )
            if stage in BLOCKED:  # memory per MB of block budget, to project to 256 MB blocks
                smaller = measure(stage, times * n, work, SMALL_BLOCK_MB)
                per_block_mb = (large["peak_mb"] - smaller["peak_mb"]) / (
                    LARGER_BLOCK_MB - SMALL_BLOCK_MB
                )
                measured[stage]["per_block_mb"] = max(per_block_mb, 1.0)
                print(
                    f"{'':11s} {'':6s} {times * n:6d}  {smaller['peak_mb']:8.1f} with "
                    f"{SMALL_BLOCK_MB} MB blocks: {per_block_mb:.1f} MB per MB of block budget"
                )
    project(measured)


def project(measured: dict) -> None:
    """Projected peak at paper size beside what each rule declares there."""
    print("\nprojected peak at paper size (MB) and what the rule declares (attempt 1)")

    def row(rule, case, projected, declared):
        verdict = "ok" if projected <= declared else "OVER"
        print(f"  {rule:18s} {case:36s} {projected:9.0f} {declared:9.0f}  {verdict}")

    if "slices" in measured:
        small, slope = measured["slices"]["small"], measured["slices"]["slope"]
        per_pixel = slope * MB / (512 * 512)
        for slices in (300, 1000):
            pixels = slices * 512 * 512
            projected = small["total_mb"] + per_pixel * pixels / MB * (SLICE_THREADS + 1)
            declared = need.slices_mem_mb(pixels, SLICE_THREADS)
            row("make_slices", f"{slices}-slice case, {SLICE_THREADS} threads", projected, declared)
        print(f"  (slicing holds {per_pixel:.1f} bytes per voxel of a case)")
    if "gleason" in measured:
        small, slope = measured["gleason"]["small"], measured["gleason"]["slope"]
        per_pixel = slope * MB / (GLEASON_ROWS * GLEASON_WIDTH)
        projected = small["total_mb"] + per_pixel * GLEASON_CORE_PIXELS / MB * (SLICE_THREADS + 1)
        declared = need.slices_mem_mb(need.LARGEST_IMAGE_PIXELS, SLICE_THREADS)
        row("make_slices", f"Gleason 5120x5120 cores, {SLICE_THREADS} threads", projected, declared)
        print(f"  (a Gleason core with six rater maps holds {per_pixel:.1f} bytes per pixel)")
    if "train" in measured:
        large = measured["train"]["large"]
        # ten full-width models on the host: weights, 2 optimiser states, a copy when saved
        models_mb = 10 * FULL_WIDTH_MODEL_MB * 4
        projected = large["total_mb"] + models_mb + 560  # + the pretrained VGG16 file
        row(
            "train_regime",
            "any regime (CPU; host of a GPU job)",
            projected,
            need.train_mem_mb(10, gpu=False),
        )
    # Blocked stages keep, per test image, only result rows (ROW_KB, generous); between runs
    # their measured growth is the allocator's (it varies from run to run, and does not keep
    # rising: tests/test_scale.py), so the projection adds the rows, not a fitted line.
    if "predict" in measured:
        m = measured["predict"]
        at_real_blocks = m["large"]["total_mb"] + m["per_block_mb"] * (
            REAL_BLOCK_MB - LARGER_BLOCK_MB
        )
        for case, n in PAPER.items():
            rows = ROW_KB["predict"] * n / 1024
            projected = at_real_blocks + rows + 10 * FULL_WIDTH_MODEL_MB
            row("predict", case, projected, need.predict_mem_mb(10, 512 * 512, 1, gpu=False))
    if "score" in measured:  # measured with the workflow's own 256 MB blocks
        m = measured["score"]
        for case, n in PAPER.items():
            projected = m["large"]["total_mb"] + ROW_KB["score"] * n / 1024
            row("score_predictions", case, projected, need.score_mem_mb(n, 10))
    if "statistics" in measured:
        m = measured["statistics"]
        for case, n in PAPER.items():
            projected = m["large"]["total_mb"] + m["slope"] * max(0, n - m["large"]["n"])
            csv_mb = n * 10 * 160 / MB  # ~160 bytes per metric row on disk
            row("compute_statistics", case, projected, need.table_mem_mb(csv_mb))
    if "showcase" in measured:  # the selected 80:20 split only
        m = measured["showcase"]
        for case, n in list(PAPER.items())[:1]:
            projected = m["large"]["total_mb"] + m["slope"] * max(0, n - m["large"]["n"])
            csv_mb = m["large"]["csv_mb"] * n / m["large"]["n"]
            row("choose_figure_images", case, projected, need.table_mem_mb(csv_mb))


if __name__ == "__main__":
    main()

"""What each rule asks a cluster for (``mem_mb``, ``runtime``), from its images' count and size.

Peak host memory of every stage was measured by ``bench/scale.py`` (anonymous RSS: the memory a
job must be given; the slice store's pages are shared, reclaimable page cache) and is modelled
here as a fixed part plus a part per image row, times a safety margin, times the attempt number
(Snakemake retries a failed job with ``attempt`` + 1). ``docs/benchmarks.md`` holds the
measurements and the projection of every rule at paper size next to what it declares.

GPU run times come from the measured training and prediction throughput, scaled by pixels and
multiplied by a margin; :data:`THROUGHPUT` holds the conservative defaults, which the config's
``resources`` section overrides for faster or slower GPUs.
"""

from __future__ import annotations

import math

MB = 1 << 20
MARGIN = 1.5  # measured peak x this = declared; the attempt number multiplies on top
# fixed host memory of a job (MB): interpreter, numpy/pandas, torch (+ its CUDA libraries and
# context when a GPU is used), measured by bench/scale.py (CPU) and bench/gpu_check.sh (GPU)
BASE_MB = {"python": 250, "torch": 700, "cuda": 3000}
THROUGHPUT = {  # images per second of one GPU at 512x512, scaled by pixel count
    "train_images_per_s": 100.0,
    "predict_images_per_s": 400.0,
}
PIXELS_512 = 512 * 512
# 2-D sources are sized for their largest possible image rather than read up front: 50
# megapixels covers ISIC (up to ~30 MP) and Gleason2019 cores (~5120 x 5120)
LARGEST_IMAGE_PIXELS = 50_000_000
# bytes per voxel a CT case holds while it is sliced (5.9 measured by bench/scale.py): the
# volume and its segmentation as read, and the finished uint8 slices and masks
SLICE_BYTES_PER_PIXEL = 8


def _declare(megabytes: float, attempt: int) -> int:
    return int(math.ceil(megabytes * MARGIN * max(1, attempt)))


def slices_mem_mb(largest_record_pixels: int, threads: int, attempt: int = 1) -> int:
    """make_slices: up to ``threads`` + 1 records in memory at once, each costing
    SLICE_BYTES_PER_PIXEL of its largest (a CT volume is read whole, then windowed, padded
    and resized slab by slab)."""
    per_record = largest_record_pixels * SLICE_BYTES_PER_PIXEL * (threads + 1)
    return _declare(BASE_MB["python"] + 200 + per_record / MB, attempt)


def train_mem_mb(models: int, gpu: bool, attempt: int = 1) -> int:
    """train_regime/train_model: the data stay in the store's page cache or on the GPU, so
    host memory does not grow with the number of images: torch (and CUDA), the pretrained
    VGG16 file (0.55 GB), and per model its weights, optimiser state and a CPU copy of both
    when its resume state is saved (~0.25 GB), plus 0.3 GB of upload blocks."""
    base = BASE_MB["torch"] + (BASE_MB["cuda"] if gpu else 0)
    return _declare(base + 560 + 250 * models + 300, attempt)


def predict_mem_mb(models: int, image_pixels: int, channels: int, gpu: bool, attempt: int = 1):
    """predict: two blocks of 256 MB (images + every model's maps) and a batch of float
    inputs; never the whole test set."""
    base = BASE_MB["torch"] + (BASE_MB["cuda"] if gpu else 0)
    return _declare(base + 50 * models + 2 * 256 + 64 * image_pixels * 3 * 4 / MB, attempt)


def score_mem_mb(n_test: int, models: int, attempt: int = 1) -> int:
    """score_predictions: a 256 MB block of maps with its boolean and integer temporaries
    (~1.5x, bench/scale.py), and per image and model ~0.1 kB of result rows, counted as 1 kB
    to cover the allocator's slow creep across blocks (+120 MB from 64 to 1,024 images)."""
    return _declare(BASE_MB["python"] + 2 * 256 + n_test * models * 1024 / MB, attempt)


def table_mem_mb(input_mb: float, attempt: int = 1) -> int:
    """statistics, tables, image choice, figures: pandas frames of the CSVs read, ~8 times
    their size on disk (strings, copies while grouping), plus matplotlib."""
    return _declare(BASE_MB["python"] + 150 + 8 * input_mb, attempt)


def train_runtime(images: int, pixels: int, throughput: dict, attempt: int = 1) -> int:
    """Minutes for ``images`` training images of ``pixels`` each (forward + backward)."""
    rate = throughput["train_images_per_s"] * PIXELS_512 / pixels
    return int(math.ceil((10 + images / rate / 60) * 2 * max(1, attempt)))


def score_runtime(maps: int, pixels: int, attempt: int = 1) -> int:
    """Minutes for scoring ``maps`` maps of ``pixels`` each: 7 ms per 512x512 map to
    decompress and score (bench/scale.py), times 3, plus 10 minutes."""
    return int(math.ceil((10 + maps * 0.007 * pixels / PIXELS_512 / 60 * 3) * max(1, attempt)))


def predict_runtime(images: int, pixels: int, throughput: dict, attempt: int = 1) -> int:
    rate = throughput["predict_images_per_s"] * PIXELS_512 / pixels
    return int(math.ceil((10 + images / rate / 60) * 2 * max(1, attempt)))

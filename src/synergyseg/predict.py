"""P(class 1) for every test image of a regime, from all of the regime's models in one job.

The test images are read from the slice store once, in blocks, and every model predicts each
block while it is on the device: one job per regime instead of one per model, so the start-up,
the data loading and the device transfers are paid once for (typically) ten models. Memory is
bounded by the block size, never by the number of test images. Each model's maps go to its own
prediction file (:mod:`synergyseg.predictions`), compressed on worker threads while the device
computes the next block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

from synergyseg.checkpoints import load_checkpoint
from synergyseg.masks import foreground_probability
from synergyseg.model import VGGUNet, upsample_logits
from synergyseg.predictions import PredictionWriter
from synergyseg.preprocess import to_network_input
from synergyseg.splits import read_split
from synergyseg.store import SliceStore, block_size, blocks, manifest_rows

log = logging.getLogger(__name__)
BLOCK_BYTES = 256 << 20  # uint8 images plus every model's maps of one block stay near this


def probabilities(
    model: VGGUNet, images: np.ndarray, batch_size: int, device: torch.device
) -> np.ndarray:
    """P(class 1) as uint8 (N, H, W) for uint8 store rows (N, H, W, C), batched."""
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = to_network_input(images[start : start + batch_size], device)
            logits = upsample_logits(model(x), tuple(x.shape[-2:]))
            out.append(foreground_probability(logits).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *images.shape[1:3]), np.uint8)


def predict_regime(
    checkpoints: Sequence[str | Path],
    split_csv: str | Path,
    store_dir: str | Path,
    outs: Sequence[str | Path],
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    threads: int = 1,
) -> dict:
    """Write ``outs[i]``, the test-set maps of ``checkpoints[i]``; return size figures."""
    if len(checkpoints) != len(outs) or not outs:
        raise ValueError("give one output file per checkpoint")
    torch.set_num_threads(threads)
    device = torch.device(device)
    models = []
    for path in checkpoints:
        model, _ = load_checkpoint(path)
        models.append(model.to(device).to(memory_format=torch.channels_last))
    rows = read_split(split_csv, "test")
    store = SliceStore(store_dir)
    # one block: its uint8 images and every model's uint8 maps
    per_block = block_size(store.height * store.width * (store.channels + len(models)), BLOCK_BYTES)
    started, n = time.perf_counter(), len(rows)
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        writers = [
            stack.enter_context(PredictionWriter(out, rows["slice_id"], store.height, store.width))
            for out in outs
        ]
        pending = []
        for _, block_rows in blocks(manifest_rows(rows), per_block):
            images = store.images(block_rows)
            maps = [probabilities(model, images, batch_size, device) for model in models]
            for future in pending:  # the previous block is compressed while this one ran
                future.result()
            pending = [pool.submit(w.write, m) for w, m in zip(writers, maps, strict=True)]
        for future in pending:
            future.result()
    seconds = time.perf_counter() - started
    sizes = [Path(out).stat().st_size for out in outs]
    figures = {
        "images": n,
        "models": len(models),
        "seconds": seconds,
        "images_per_s": n * len(models) / seconds if seconds else float("inf"),
        "bytes_per_image": float(np.mean(sizes)) / max(1, n),
    }
    log.info(
        "%d test images x %d models in %.1fs (%.1f model-images/s), %.0f bytes per map",
        n,
        len(models),
        seconds,
        figures["images_per_s"],
        figures["bytes_per_image"],
    )
    return figures

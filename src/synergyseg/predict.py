"""Predict P(class 1) for every test image of a regime with one trained model.

Output: one compressed ``.npz`` per model with ``probs`` (N, H, W) uint8 = round(255 · P) and
``slice_ids`` (N,), in split-manifest order. uint8 keeps 1/255 resolution, which the metrics
(threshold 0.5 and AUROC over 256 levels) use exactly, at a quarter of float32's size before
compression.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from synergyseg.errors import InputDataError
from synergyseg.io import atomic_path
from synergyseg.model import ModelSpec, VGGUNet, upsample_logits
from synergyseg.preprocess import normalise
from synergyseg.samples import load_samples
from synergyseg.splits import read_split
from synergyseg.weights import safe_load

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path) -> tuple[VGGUNet, dict]:
    """Rebuild a trained model from its checkpoint; ``weights_only=True`` refuses pickled code."""
    path = Path(path)
    checkpoint = safe_load(path)
    if not isinstance(checkpoint, dict) or {"state_dict", "meta"} - set(checkpoint):
        raise InputDataError(path, "is not a synergyseg checkpoint (needs state_dict and meta)")
    model = VGGUNet(ModelSpec(**checkpoint["meta"]["spec"]["model"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint["meta"]


def foreground_probability(logits: torch.Tensor) -> torch.Tensor:
    """P(class 1) as uint8 = round(255 · softmax) from logits (N, 2, H, W): the form every
    prediction file stores, and (at >= 128, i.e. P >= 0.5) the mask every stage scores."""
    return torch.round(torch.softmax(logits.float(), dim=1)[:, 1] * 255).to(torch.uint8)


def probabilities(
    model: VGGUNet, images: torch.Tensor, batch_size: int, device: torch.device
) -> np.ndarray:
    """P(class 1) as uint8 for uint8 images (N, C, H, W), batched."""
    model = model.to(device)
    out = []
    with torch.no_grad():
        for batch in images.split(batch_size):
            x = normalise(batch.to(device))
            logits = upsample_logits(model(x), tuple(x.shape[-2:]))
            out.append(foreground_probability(logits).cpu().numpy())
    return np.concatenate(out)


def predict_split(
    checkpoint: str | Path,
    split_csv: str | Path,
    out: str | Path,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    threads: int = 1,
) -> dict:
    """Write the test-set probabilities of one model; return size figures for the log."""
    torch.set_num_threads(threads)
    model, _ = load_checkpoint(checkpoint)
    rows = read_split(split_csv, "test")
    samples = load_samples(rows, with_masks=False)
    probs = probabilities(model, samples.images, batch_size, torch.device(device))
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez_compressed(tmp, probs=probs, slice_ids=np.array(samples.slice_ids))
    size = Path(out).stat().st_size
    stats = {"images": len(samples), "bytes": size, "bytes_per_image": size / len(samples)}
    log.info(
        "%d test images, %d bytes (%.0f bytes per image)",
        len(samples),
        size,
        stats["bytes_per_image"],
    )
    return stats

"""Train one VGG16-UNet (dataset × regime × init × replicate): resumable, logged, reproducible.

* Loss: pixel-wise 2-class cross-entropy on logits upsampled to the mask size.
* Optimiser: Adadelta with the Keras defaults (lr 1.0, rho 0.95, eps 1e-7).
* Seeds: from (seed, dataset, regime, replicate) only, so TII and LMI of one replicate see the
  same data order and the same decoder initialisation.
* An epoch is a full pass, or ``steps_per_epoch`` batches (the Keras library's 512 x 2).
* A held-out ``monitor_fraction`` of the training images gives a monitoring loss per epoch;
  it never influences training.
* After every epoch the full state (model, optimiser, RNG, epoch, history) is saved atomically
  next to the output; a restarted job continues from there and, on the CPU, ends with exactly
  the weights of an uninterrupted run (the data order of epoch e depends only on the seed and e).
* The final checkpoint is written atomically with its metadata and loads with
  ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torchvision

from synergyseg import __version__
from synergyseg.config import TRAINING_OPTIONS
from synergyseg.data.download import sha256_of
from synergyseg.io import atomic_path, write_csv
from synergyseg.model import ModelSpec, VGGUNet, build_model, upsample_logits
from synergyseg.preprocess import normalise
from synergyseg.samples import Samples, augment_batch, flip_augmentation, load_samples
from synergyseg.seeds import regime_seed
from synergyseg.splits import read_split
from synergyseg.weights import load_state_dict, safe_load

log = logging.getLogger(__name__)
HISTORY_COLUMNS = ["epoch", "train_loss", "monitor_loss", "images_per_s", "seconds"]


@dataclass(frozen=True)
class TrainSpec:
    """Everything that determines one training job (and nothing else)."""

    dataset: str
    regime: str
    init: str
    rep: int
    seed: int
    epochs: int
    model: ModelSpec = field(default_factory=ModelSpec)
    batch_size: int = 2
    steps_per_epoch: int | None = None
    monitor_fraction: float = 0.1
    augment: bool = False
    bf16: bool = True
    channels_last: bool = True

    @property
    def job_seed(self) -> int:
        return regime_seed(self.seed, self.dataset, self.regime, f"rep{self.rep}")

    @classmethod
    def from_params(cls, train: dict, model: dict, epochs: int, seed: int, wildcards) -> TrainSpec:
        """Build from the rule's params (config slices) and wildcards."""
        options = {k: train[k] for k in TRAINING_OPTIONS if k in train}
        return cls(
            dataset=wildcards.dataset,
            regime=wildcards.regime,
            init=wildcards.init,
            rep=int(wildcards.rep),
            seed=seed,
            epochs=epochs,
            model=ModelSpec(**model),
            **options,
        )

    def as_dict(self) -> dict:
        return asdict(self)


def library_versions() -> dict[str, str]:
    return {
        "synergyseg": __version__,
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


def monitor_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, monitor): a seeded ``fraction`` of the training images held out."""
    n_monitor = min(n - 1, math.ceil(n * fraction)) if fraction > 0 and n > 1 else 0
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_monitor:]), np.sort(order[:n_monitor])


def epoch_batches(
    n: int, batch_size: int, steps: int | None, seed: int, epoch: int
) -> list[torch.Tensor]:
    """Batches of one epoch: a permutation seeded by (seed, epoch), cycled for ``steps``.

    Every batch is full. In a full pass the last ``n % batch_size`` images of the permutation
    (different ones each epoch) are left out, as with ``drop_last``: a batch of one or two
    images gives BatchNorm such odd statistics that, late in a short run, it can spoil the
    running averages used at test time (seen in the demo as a final-epoch loss spike).
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if steps is None:
        order = torch.randperm(n, generator=generator)
        usable = max(batch_size, n - n % batch_size) if n >= batch_size else n
        return list(order[:usable].split(batch_size))
    needed = steps * batch_size
    order = torch.cat(
        [torch.randperm(n, generator=generator) for _ in range(math.ceil(needed / n))]
    )
    return list(order[:needed].split(batch_size))


def pixel_loss(model: VGGUNet, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    logits = upsample_logits(model(images), tuple(masks.shape[-2:]))
    return F.cross_entropy(logits.float(), masks)


def _to_device(batch: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = normalise(batch.to(device, non_blocking=True))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def evaluate_loss(model, samples: Samples, device, spec: TrainSpec, autocast) -> float:
    if len(samples) == 0:
        return float("nan")
    model.eval()
    total = 0.0
    with torch.no_grad(), autocast():
        for index in torch.arange(len(samples)).split(max(spec.batch_size, 8)):
            x = _to_device(samples.images[index], device, spec.channels_last)
            y = samples.masks[index].to(device).long()
            total += float(pixel_loss(model, x, y)) * len(index)
    return total / len(samples)


def resume_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".resume.pt")


def resume_key(spec: TrainSpec, split_csv: str | Path, weights: str | Path | None) -> dict:
    """What a resume file must match: the settings and the exact inputs (split and weights)."""
    return {
        "spec": spec.as_dict(),
        "split_sha256": sha256_of(split_csv),
        "weights_sha256": sha256_of(weights) if weights else None,
    }


def _save_state(path: Path, model, optimiser, epoch: int, history: list, key: dict) -> None:
    state = {
        "key": key,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "history": history,
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_state(path: Path, key: dict) -> dict | None:
    if not path.is_file():
        return None
    state = safe_load(path)
    if state.get("key") != key:
        log.warning("%s belongs to other settings or inputs; starting from scratch", path)
        return None
    return state


def train_model(
    spec: TrainSpec,
    split_csv: str | Path,
    out: str | Path,
    history_csv: str | Path,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    threads: int = 1,
    on_epoch_end: Callable[[int], None] | None = None,
) -> list[dict]:
    """Train one model and write ``out`` (checkpoint) and ``history_csv`` (loss per epoch)."""
    torch.set_num_threads(threads)
    device = torch.device(device)
    use_bf16 = spec.bf16 and device.type == "cuda"
    # channels_last is a memory layout, not a precision: measured faster on CPUs too
    # (docs/benchmarks.md), so it follows the setting on every device; bf16 is GPU-only.
    channels_last = spec.channels_last

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    samples = load_samples(read_split(split_csv, "train"))
    train_index, monitor_index = monitor_split(len(samples), spec.monitor_fraction, spec.job_seed)
    train_set, monitor_set = samples.subset(train_index), samples.subset(monitor_index)
    image_shape = tuple(samples.images.shape[1:])
    del samples  # the subsets are copies; keep one set of images in memory
    log.info(
        "%s/%s/%s/rep%d: %d training and %d monitoring images of %s, device %s%s",
        spec.dataset,
        spec.regime,
        spec.init,
        spec.rep,
        len(train_set),
        len(monitor_set),
        image_shape,
        device,
        " (bf16 autocast)" if use_bf16 else "",
    )
    torch.manual_seed(spec.job_seed)
    pretrained = load_state_dict(weights) if spec.init == "tii" else None
    model = build_model(spec.model, spec.init, pretrained, source=str(weights)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    transform = flip_augmentation() if spec.augment else None

    history: list[dict] = []
    first_epoch = 1
    state_file = resume_path(out)
    key = resume_key(spec, split_csv, weights if spec.init == "tii" else None)
    state = _load_state(state_file, key)
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        torch.set_rng_state(state["torch_rng"])
        history, first_epoch = list(state["history"]), int(state["epoch"]) + 1
        log.info("resuming from %s after epoch %d", state_file, state["epoch"])

    for epoch in range(first_epoch, spec.epochs + 1):
        started = time.perf_counter()
        model.train()
        total, seen = 0.0, 0
        for index in epoch_batches(
            len(train_set), spec.batch_size, spec.steps_per_epoch, spec.job_seed, epoch
        ):
            images, masks = train_set.images[index], train_set.masks[index]
            if transform is not None:
                images, masks = augment_batch(transform, images, masks)
            x = _to_device(images, device, channels_last)
            y = masks.to(device, non_blocking=True).long()
            optimiser.zero_grad(set_to_none=True)
            with autocast():
                loss = pixel_loss(model, x, y)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(index)
            seen += len(index)
        monitor = evaluate_loss(model, monitor_set, device, spec, autocast)
        seconds = time.perf_counter() - started
        row = {
            "epoch": epoch,
            "train_loss": total / seen,
            "monitor_loss": monitor,
            "images_per_s": seen / seconds,
            "seconds": seconds,
        }
        history.append(row)
        _save_state(state_file, model, optimiser, epoch, history, key)
        write_csv(pd.DataFrame(history, columns=HISTORY_COLUMNS), history_csv)
        left = (spec.epochs - epoch) * float(np.mean([h["seconds"] for h in history[-3:]]))
        log.info(
            "epoch %d/%d  train loss %.4f  monitor loss %.4f  %.1f images/s  %.1fs  ~%.0fs left",
            epoch,
            spec.epochs,
            row["train_loss"],
            monitor,
            row["images_per_s"],
            seconds,
            left,
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    checkpoint = {
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "meta": {
            "spec": spec.as_dict(),
            "job_seed": spec.job_seed,
            "weights": str(weights) if weights else None,
            "versions": library_versions(),
            "device": str(device),
            "history": history,
            "n_train": len(train_set),
            "n_monitor": len(monitor_set),
        },
    }
    # also when a resumed job had no epoch left to run (Snakemake deletes logs before a job)
    write_csv(pd.DataFrame(history, columns=HISTORY_COLUMNS), history_csv)
    with atomic_path(out) as tmp:
        torch.save(checkpoint, tmp)
    state_file.unlink(missing_ok=True)
    return history

"""The training side of a split, read once from the slice store and fed to one or many models.

One copy of the data serves every model a job trains. On a GPU it is moved to device memory
once when it fits (uint8 images, bit-packed masks: 10.7 GB for the kidney training side), and
each batch is gathered, unpacked and normalised there, so no step waits for the host. When it
does not fit, or on the CPU, batches are read from the store's memory map (through a pinned
buffer on a GPU). Host memory stays bounded either way: the data reach the device in blocks.

The data order of a model depends only on its seed and the epoch (:func:`epoch_batches`), so a
model trained with others sees exactly the batches it would see alone, and a resumed job the
batches of an uninterrupted one. Random flips (``augment``) are drawn from the epoch's
generator too; fixed-step epochs take their order from one generator per pass over the data.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synergyseg.manifests import read_split
from synergyseg.preprocess import to_network_input
from synergyseg.store import SliceStore, block_size, blocks, manifest_rows, packed_width

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochPlan:
    """The batches of one epoch of one model: ``index`` (steps, batch) positions in the
    training set and, with augmentation, ``flips`` (steps, batch, 2) horizontal/vertical."""

    index: torch.Tensor
    flips: torch.Tensor | None


def epoch_batches(
    n: int, batch_size: int, steps: int | None, seed: int, epoch: int, augment: bool = False
) -> EpochPlan:
    """Batches of one epoch (``epoch`` counts from 1): a full pass, or ``steps`` batches.

    A full pass takes a permutation seeded by (seed, epoch). Every batch is full: the last
    ``n % batch_size`` images of the permutation (different ones each epoch) are left out, as
    with ``drop_last``: a batch of one or two images gives BatchNorm such odd statistics that,
    late in a short run, it can spoil the running averages used at test time (seen in the
    demo as a final-epoch loss spike).

    With ``steps``, the epochs are consecutive stretches of one stream of images, as in the
    Keras library's generator (shuffle, then cycle): epoch e takes stream positions
    (e-1)·steps·batch … e·steps·batch - 1, and pass k over the training set (positions
    k·n … (k+1)·n - 1) is a permutation seeded by (seed, k). So successive epochs walk on
    through new images, and 20 epochs of 512 × 2 see 20,480 different kidney slices, not a
    fresh sample of 1,024 each epoch that leaves half of the training set unseen. The library
    cycles one order; a new permutation per pass is what a full pass does here too.
    """
    if n < batch_size:
        raise ValueError(f"{n} training images cannot fill one batch of {batch_size}")
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if steps is None:
        order = torch.randperm(n, generator=generator)
        index = order[: n - n % batch_size].view(-1, batch_size)
    else:
        needed = steps * batch_size
        start = (epoch - 1) * needed
        first, last = start // n, (start + needed - 1) // n
        passes = [
            torch.randperm(n, generator=_pass_generator(seed, k)) for k in range(first, last + 1)
        ]
        offset = start - first * n
        index = torch.cat(passes)[offset : offset + needed].view(steps, batch_size)
    flips = torch.rand(*index.shape, 2, generator=generator) < 0.5 if augment else None
    return EpochPlan(index, flips)


def _pass_generator(seed: int, k: int) -> torch.Generator:
    """The generator of pass ``k`` over the training set: a stream of its own, independent of
    the per-epoch generator (which draws the flips)."""
    key = [seed % 2**64, k % 2**64, 0x0DA7A]  # SeedSequence takes non-negative words
    state = np.random.SeedSequence(key).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) >> 1)


@functools.cache
def _bit_shifts(device: torch.device) -> torch.Tensor:
    """7, 6, ... 0 (np.packbits is big-endian per byte), made once per device so that no step
    copies from the host (a CUDA graph could not capture that)."""
    return torch.arange(7, -1, -1, dtype=torch.uint8).to(device)


def unpack_bits(packed: torch.Tensor, width: int) -> torch.Tensor:
    """Bit-packed masks (..., H, ceil(W / 8)) → uint8 {0, 1} (..., H, width), on any device."""
    bits = (packed.unsqueeze(-1) >> _bit_shifts(packed.device)) & 1
    return bits.flatten(-2)[..., :width]


def flip(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Flip each sample of x (N, ..., H, W) horizontally / vertically where ``flips`` (N, 2)
    says so; images and masks get the same flips, so they stay aligned. The choice is a
    tensor, not a Python branch, so the step stays capturable as a CUDA graph."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    x = torch.where(flips[:, 0].view(shape), x.flip(-1), x)
    return torch.where(flips[:, 1].view(shape), x.flip(-2), x)


class TrainingData:
    """The training images (uint8, N H W C) and packed masks of one split side, on ``device``
    (resident) or in the store's memory map (streamed); :meth:`batch` makes network inputs."""

    def __init__(
        self,
        store: SliceStore,
        rows: np.ndarray,
        device: torch.device,
        channels_last: bool = True,
        resident: bool | None = None,
        reserve_bytes: int = 0,
    ):
        self.store, self.rows, self.device = store, np.asarray(rows), device
        self.channels_last = channels_last
        self.height, self.width = store.height, store.width
        if resident is None:
            resident = device.type == "cuda" and self._fits(reserve_bytes)
        self.resident = resident
        if resident:
            self.images, self.masks = self._upload()
        log.info(
            "%d training images of %dx%d (%.2f GB) %s",
            len(self),
            self.width,
            self.height,
            self.nbytes / 1e9,
            f"resident on {device}" if resident else "read from the store per batch",
        )

    @classmethod
    def from_split(cls, store_dir: str | Path, split_csv: str | Path, device, **kwargs):
        rows = manifest_rows(read_split(split_csv, "train"))
        return cls(SliceStore(store_dir), rows, torch.device(device), **kwargs)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def nbytes(self) -> int:
        return len(self) * (self.store.image_bytes + self.store.mask_bytes)

    def _fits(self, reserve_bytes: int) -> bool:
        free, _ = torch.cuda.mem_get_info(self.device)
        return self.nbytes + reserve_bytes <= 0.9 * free

    def _upload(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Copy the rows to the device block by block (bounded host memory)."""
        h, w, c = self.height, self.width, self.store.channels
        images = torch.empty((len(self), h, w, c), dtype=torch.uint8, device=self.device)
        masks = torch.empty((len(self), h, packed_width(w)), dtype=torch.uint8, device=self.device)
        for where, rows in blocks(self.rows, block_size(self.store.image_bytes)):
            images[where] = torch.from_numpy(self.store.images(rows)).to(self.device)
            masks[where] = torch.from_numpy(self.store.packed_masks(rows)).to(self.device)
        return images, masks

    def _gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (b, H, W, C) and packed masks of training positions ``index``."""
        if self.resident:
            index = index.to(self.device, non_blocking=True)
            return self.images[index], self.masks[index]
        rows = self.rows[index.cpu().numpy()]  # run_epoch keeps this index on the host
        images = torch.from_numpy(self.store.images(rows))
        masks = torch.from_numpy(self.store.packed_masks(rows))
        if self.device.type != "cuda":
            return images, masks
        # Each batch gets its own page-locked copy from PyTorch's caching host allocator, which
        # reuses a block only once the copy out of it has finished on whichever model's stream
        # made it: no model waits for another, and none can read another's refilled buffer.
        return (
            images.pin_memory().to(self.device, non_blocking=True),
            masks.pin_memory().to(self.device, non_blocking=True),
        )

    def batch(
        self, index: torch.Tensor, flips: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x float (b, 3, H, W) normalised, y int64 (b, H, W)) for training positions."""
        images, packed = self._gather(index)
        x = to_network_input(images, self.device, self.channels_last)
        y = unpack_bits(packed, self.width).long()
        if flips is not None:
            flips = flips.to(x.device, non_blocking=True)
            x, y = flip(x, flips), flip(y, flips)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        return x, y


def monitor_positions(n: int, count: int, seed: int) -> np.ndarray:
    """A fixed, seeded sample of ``count`` training positions whose loss is reported each epoch
    (in eval mode). They stay in the training set: monitoring never removes training data."""
    count = min(count, n)
    return np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))

"""Load the slices of one side of a split manifest into memory, and augment them jointly.

Slices are small (608x416 at most) and a training set fits in memory as uint8, which keeps
epochs fast and makes the data order the only source of randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from synergyseg.errors import InputDataError
from synergyseg.io import read_binary_mask


@dataclass
class Samples:
    """Images (N, C, H, W) uint8, masks (N, H, W) uint8 in {0, 1} (or None), and slice ids.

    Masks stay uint8 in memory (the full kidney split is ~36k slices of 512x512); batches are
    converted to int64 for the loss only when used.
    """

    slice_ids: list[str]
    images: torch.Tensor
    masks: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.slice_ids)

    def subset(self, index: torch.Tensor | np.ndarray) -> Samples:
        index = torch.as_tensor(index, dtype=torch.long)
        masks = None if self.masks is None else self.masks[index]
        return Samples([self.slice_ids[i] for i in index.tolist()], self.images[index], masks)


def load_samples(rows: pd.DataFrame, root: str | Path = ".", with_masks: bool = True) -> Samples:
    """Read the PNG slices (and masks) listed in ``rows`` (paths relative to ``root``)."""
    root = Path(root)
    images, masks = [], []
    for row in rows.itertuples(index=False):
        path = root / row.image
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise InputDataError(path, "slice image is missing or unreadable")
        image = image[..., None] if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        images.append(image)
        if not with_masks:
            continue
        mask = read_binary_mask(root / row.mask)
        if mask.shape != image.shape[:2]:
            raise InputDataError(
                root / row.mask, f"mask {mask.shape} differs from slice {image.shape[:2]}"
            )
        masks.append(mask)
    shapes = {i.shape for i in images}
    if len(shapes) != 1:
        raise InputDataError(root, f"slices of one split differ in size: {sorted(shapes)}")
    return Samples(
        list(rows["slice_id"]),
        torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(np.stack(masks)) if with_masks else None,
    )


def flip_augmentation() -> v2.Transform:
    """Random horizontal and vertical flips applied to image and mask together (transforms.v2
    moves a ``tv_tensors.Mask`` with its image). Off by default: the paper used none."""
    return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()])


def augment_batch(transform: v2.Transform, images: torch.Tensor, masks: torch.Tensor):
    """Apply ``transform`` per sample so each image draws its own flips."""
    out_images, out_masks = [], []
    for image, mask in zip(images, masks, strict=True):
        a, b = transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
        out_images.append(a.as_subclass(torch.Tensor))
        out_masks.append(b.as_subclass(torch.Tensor))
    return torch.stack(out_images), torch.stack(out_masks)

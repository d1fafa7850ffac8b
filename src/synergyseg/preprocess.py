"""Network input conventions shared by training, prediction and pretraining.

Preprocessing is identical for TII and LMI (ImageNet mean/std, gray repeated to 3 channels),
so the initial weights are the only difference between the two.
"""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) with C = 1 or 3 → float32 normalised with ImageNet statistics."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    x = images.float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def to_network_input(images, device: torch.device) -> torch.Tensor:
    """uint8 slice-store rows (N, H, W, C) → normalised float (N, 3, H, W), channels_last, on
    ``device`` (the layout the store keeps is already channels_last: no copy to reorder)."""
    images = torch.as_tensor(images).to(device, non_blocking=True)
    return normalise(images.permute(0, 3, 1, 2)).contiguous(memory_format=torch.channels_last)

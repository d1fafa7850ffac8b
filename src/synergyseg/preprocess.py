"""Network input and output conventions shared by training, prediction and pretraining.

Preprocessing is identical for TII and LMI (ImageNet mean/std, gray repeated to 3 channels),
so the initial weights are the only difference between the two.
"""

from __future__ import annotations

import functools

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.cache
def _statistics(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std on ``device``, made once: a training step captured as a CUDA graph
    must not copy from host memory, so nothing inside it may build tensors from Python lists."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return mean.to(device), std.to(device)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) with C = 1 or 3 → float32 normalised with ImageNet statistics."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    x = images.float() / 255.0
    mean, std = _statistics(x.device)
    return (x - mean) / std


def foreground_probability(logits: torch.Tensor) -> torch.Tensor:
    """P(class 1) as uint8 = round(255 · softmax) from logits (N, 2, H, W): the form every
    prediction file stores; at >= masks.THRESHOLD (P >= 0.5) the mask every stage scores."""
    return torch.round(torch.softmax(logits.float(), dim=1)[:, 1] * 255).to(torch.uint8)


def to_network_input(images, device: torch.device, channels_last: bool = True) -> torch.Tensor:
    """uint8 slice-store rows (N, H, W, C) → normalised float (N, 3, H, W) on ``device``,
    channels_last by default (the layout the store keeps already is: no copy to reorder)."""
    images = torch.as_tensor(images).to(device, non_blocking=True)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return normalise(images.permute(0, 3, 1, 2)).contiguous(memory_format=layout)

"""The arithmetic a trained model is run in after training: the one it was trained in.

Prediction and Grad-CAM read the checkpoint's ``precision`` (what training resolved on its
device) and run the network the same way: under bf16 autocast for a model trained under it, in
strict fp32 otherwise. PyTorch lets cuDNN use TF32 for fp32 convolutions by default on Ampere
and newer GPUs; training switches that off for fp32 models, so the later stages must too, or
an fp32 model's probability maps would come from different arithmetic than its training.
"""

from __future__ import annotations

import torch


def strict_fp32() -> None:
    """No TF32 shortcuts in cuDNN convolutions or matrix products (process-wide)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def autocast_for(meta: dict, device: torch.device) -> torch.autocast:
    """The autocast context to run a model with checkpoint metadata ``meta`` on ``device``
    (bf16, or disabled); for an fp32 model on a GPU, TF32 is switched off as well."""
    bf16 = meta.get("precision") == "bf16" and device.type == "cuda"
    if device.type == "cuda" and not bf16:
        strict_fp32()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

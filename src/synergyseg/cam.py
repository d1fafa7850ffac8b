"""Grad-CAM for the segmentation network, per target class, averaged over replicates (eq. 3).

For target class c the score is the sum of the class-c logit over the pixels the model assigns
to c (``target="predicted"``: class 1 on its predicted mask, P >= 0.5 as the prediction stage
rounds it; class 0 on the rest), or over every pixel (``target="all"``). A class the model does
not predict in an image therefore has a zero score and an empty map, as the paper observes for
tumour-free cores. The channel weights are the spatial mean of the score's gradient at the
chosen layer's output; the map is ReLU(Σ_k w_k A_k), upsampled bilinearly to the input and
min–max scaled to [0, 1] (a constant map becomes all zeros).

Logits are taken at the input resolution (the same upsampling the predictions use) and in the
arithmetic the predictions use (the checkpoint's precision), so "the pixels the model assigns
to c" are the pixels of its predicted mask: on the CPU the masks stored here equal the
thresholded prediction files (tested); on a GPU, where cuDNN may choose other kernels for
another batch size, a pixel at the 0.5 threshold can fall on the other side.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synergyseg.arithmetic import autocast_for
from synergyseg.cam_files import CLASSES, chosen_test_rows, write_cams
from synergyseg.checkpoints import load_checkpoint
from synergyseg.masks import THRESHOLD, replicate_intersection
from synergyseg.model import VGGUNet, upsample_logits
from synergyseg.preprocess import foreground_probability, to_network_input
from synergyseg.store import SliceStore, manifest_rows

log = logging.getLogger(__name__)

TARGETS = ("predicted", "all")


def default_layer(model: nn.Module) -> str:
    """The last decoder block before the head (the paper's last convolutional stage)."""
    if isinstance(model, VGGUNet):
        return f"decoder.{len(model.decoder) - 1}"
    raise ValueError("give the Grad-CAM layer by name for models other than VGGUNet")


def resolve_layer(model: nn.Module, name: str | None) -> tuple[str, nn.Module]:
    """(name, module) of the layer whose output Grad-CAM weights; a clear error lists choices."""
    name = name or default_layer(model)
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        choices = [n for n, m in modules.items() if n and isinstance(m, nn.Conv2d | nn.Sequential)]
        raise ValueError(f"no layer {name!r} in the model; choose one of {choices}")
    return name, modules[name]


def _without_inplace(model: nn.Module) -> None:
    """In-place ReLUs would overwrite a hooked activation before its gradient is taken."""
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Scale each (H, W) map of (N, H, W) to [0, 1]; constant maps become zeros."""
    flat = maps.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1)
    span = (flat.max(dim=1).values.view(-1, 1, 1) - low).clamp_min(0)
    return torch.where(span > 0, (maps - low) / torch.where(span > 0, span, 1), 0.0)


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    classes: Sequence[int] = CLASSES,
    layer: str | None = None,
    target: str = "predicted",
    autocast=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps (N, len(classes), H, W) in [0, 1], predicted masks (N, H, W) bool) for
    normalised inputs x, from one forward pass (under ``autocast``, the context the model's
    predictions were made in: see :func:`synergyseg.arithmetic.autocast_for`).

    ``model`` maps x to two-class logits (N, 2, h, w) at any resolution; they are upsampled to
    x's size. The predicted mask is the prediction stage's (P(class 1) >= 0.5 after rounding
    to uint8), so class 1 is scored on exactly the pixels of the predicted mask and class 0 on
    the rest. Images of a batch do not interact (the model must be in eval mode), so one
    backward pass per class serves the whole batch.
    """
    if target not in TARGETS:
        raise ValueError(f"Grad-CAM target must be one of {TARGETS}, got {target!r}")
    if model.training:
        raise ValueError("Grad-CAM needs the model in eval mode (BatchNorm couples a batch)")
    name, module = resolve_layer(model, layer)
    _without_inplace(model)
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.enable_grad():
            with autocast or contextlib.nullcontext():
                logits = model(x)
            logits = upsample_logits(logits, tuple(x.shape[-2:])).float()
    finally:
        handle.remove()
    if len(captured) != 1:
        raise ValueError(f"layer {name!r} ran {len(captured)} times in one forward pass, not once")
    (activation,) = captured
    if not activation.requires_grad:
        raise ValueError(f"layer {name!r}: no gradient reaches it (are the weights frozen?)")
    predicted = foreground_probability(logits.detach()) >= THRESHOLD
    maps = []
    for position, target_class in enumerate(classes):
        if target == "all":
            region = torch.ones_like(predicted)
        else:
            region = predicted if target_class == 1 else ~predicted
        score = (logits[:, target_class] * region).sum()
        last = position == len(classes) - 1
        (gradient,) = torch.autograd.grad(score, activation, retain_graph=not last)
        weights = gradient.float().mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * activation.detach().float()).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
        maps.append(minmax(cam[:, 0]))
    return torch.stack(maps, dim=1), predicted


def replicate_average(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Eq. 3: the Grad-CAM output of a model is the mean over its R replicate maps."""
    return np.mean(np.stack(maps), axis=0)


def model_cams(
    model: nn.Module,
    images: np.ndarray,
    layer: str | None,
    target: str,
    batch_size: int,
    device: torch.device,
    autocast=None,
) -> tuple[np.ndarray, np.ndarray]:
    """(maps (N, 2, H, W) float32 for classes 0 and 1, masks (N, H, W) bool) of one model
    for uint8 store rows (N, H, W, C), its forward passes under ``autocast``."""
    model = model.to(device).eval()
    maps, masks = [], []
    for start in range(0, len(images), batch_size):
        x = to_network_input(images[start : start + batch_size], device)
        cam, mask = grad_cam(model, x, CLASSES, layer, target, autocast)
        maps.append(cam.cpu().numpy())
        masks.append(mask.cpu().numpy())
    return np.concatenate(maps).astype(np.float32), np.concatenate(masks)


def explain_images(
    checkpoints: Sequence[str | Path],
    split_csv: str | Path,
    store_dir: str | Path,
    images_csv: str | Path,
    out: str | Path,
    layer: str | None = None,
    target: str = "predicted",
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    expected_model: dict | None = None,
    threads: int | None = None,
) -> None:
    """Replicate-averaged Grad-CAM maps and replicate-intersection masks of the chosen images.

    Writes ``out`` (.npz): ``slice_ids`` (N,), ``cam`` (N, 2, H, W) float32 (eq. 3; axis 1 is
    the target class), ``mask`` (N, H, W) bool (eq. 2), ``replicates`` and ``layer``.
    ``threads`` bounds torch's CPU threads to what the job asked the scheduler for.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    _, rows = chosen_test_rows(split_csv, images_csv)
    images = SliceStore(store_dir).images(manifest_rows(rows))
    maps, masks, layer_name = [], [], None
    device = torch.device(device)
    for path in checkpoints:
        model, meta = load_checkpoint(path, expected_model)
        layer_name, _ = resolve_layer(model, layer)
        autocast = autocast_for(meta, device)  # as predict ran it: its masks are these
        m, k = model_cams(model, images, layer, target, batch_size, device, autocast)
        maps.append(m)
        masks.append(k)
        log.info("%s: Grad-CAM of %d images at %s", path, len(rows), layer_name)
    write_cams(
        out,
        rows["slice_id"],
        replicate_average(maps),
        replicate_intersection(masks),
        len(checkpoints),
        layer_name,
    )

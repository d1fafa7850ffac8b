"""Pretrained encoder weights: torchvision's ImageNet VGG16, a user file, or a local pretraining.

All three end as a torchvision-style VGG16 state dict on disk (``features.N.weight`` …), loaded
by one function with ``torch.load(weights_only=True)`` and handed to
:func:`synergyseg.model.build_model`, so TII always goes through the same code path.

torchvision caches ``vgg16-397923af.pth`` and checks the SHA-256 prefix in its name only when
it downloads; here the prefix is checked every time the file is fetched or copied, and the
download happens once, in a local rule, so offline compute nodes never try.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import torch
from torchvision.models import VGG16_Weights

from synergyseg.data import download
from synergyseg.errors import InputDataError
from synergyseg.io import atomic_path

log = logging.getLogger(__name__)
IMAGENET_URL = VGG16_Weights.IMAGENET1K_V1.url
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")


def hash_prefix(file_name: str) -> str:
    """torchvision's convention: ``name-<sha256 prefix>.pth``."""
    match = HASH_IN_NAME.search(file_name)
    if not match:
        raise ValueError(f"{file_name}: no '-<sha256 prefix>.' in the file name")
    return match.group(1)


def fetch_imagenet_weights(dest: str | Path, url: str = IMAGENET_URL) -> Path:
    """Put the ImageNet VGG16 weights at ``dest`` (from torch's hub cache if present, else
    downloaded) and verify the SHA-256 prefix named in the URL."""
    dest = Path(dest)
    name = url.rsplit("/", 1)[-1]
    expected = hash_prefix(name)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not dest.exists() and cached.is_file():
        download.verify(cached, expected)
        with atomic_path(dest) as tmp:
            shutil.copyfile(cached, tmp)
        log.info("copied %s from the torch hub cache", name)
        return dest
    return download.fetch(url, dest, sha256=expected)


def safe_load(path: str | Path, mmap: bool = False):
    """``torch.load(weights_only=True)``: tensors and plain containers only, never pickled code.

    Every checkpoint, resume state and weights file in the workflow is read through here, so a
    tampered file is refused with a message that names it. ``mmap`` maps tensors lazily, for
    readers that only want a checkpoint's metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "weights file is missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise InputDataError(
            path, f"cannot be loaded safely with weights_only=True ({err})"
        ) from err


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict of tensors (bare, or under ``state_dict``); errors name the file."""
    path = Path(path)
    obj = safe_load(path)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputDataError(path, "is not a state dict of tensors")
    return obj

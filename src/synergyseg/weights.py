"""Safe loading of every weights file: checkpoints, resume states and pretrained encoders.

Pretrained encoders (torchvision's ImageNet VGG16, fetched by :mod:`synergyseg.data.download`,
a user file, or a local pretraining) all end as a torchvision-style VGG16 state dict on disk
(``features.N.weight`` …), loaded here with ``torch.load(weights_only=True)`` and handed to
:func:`synergyseg.model.build_model`, so TII always goes through the same code path.
"""

from __future__ import annotations

from pathlib import Path

import torch

from synergyseg.errors import InputDataError


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
    except (OSError, MemoryError):
        raise  # the file system or the node failed, not the file: a retry may read it
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad input file
        # torch's own advice (retry with weights_only=False) would run the file's code: dropped
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        reason = reason.split(" Re-running `torch.load`")[0]
        raise InputDataError(
            path,
            f"refused: not loadable with weights_only=True, i.e. it holds more than tensors "
            f"and plain containers ({reason}). Do not load it with weights_only=False "
            "unless you trust where it came from.",
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

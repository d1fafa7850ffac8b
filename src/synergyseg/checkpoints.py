"""Trained models back from their checkpoint files (``weights_only=True``: no pickled code)."""

from __future__ import annotations

from pathlib import Path

from synergyseg.errors import InputDataError
from synergyseg.model import ModelSpec, VGGUNet
from synergyseg.weights import safe_load


def load_checkpoint(path: str | Path) -> tuple[VGGUNet, dict]:
    """Rebuild a trained model (in eval mode) and its metadata from a checkpoint file."""
    path = Path(path)
    checkpoint = safe_load(path)
    if not isinstance(checkpoint, dict) or {"state_dict", "meta"} - set(checkpoint):
        raise InputDataError(path, "is not a synergyseg checkpoint (needs state_dict and meta)")
    model = VGGUNet(ModelSpec(**checkpoint["meta"]["spec"]["model"]))
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise InputDataError(path, f"does not fit its own model settings ({err})") from err
    return model.eval(), checkpoint["meta"]

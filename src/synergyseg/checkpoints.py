"""Trained models back from their checkpoint files (``weights_only=True``: no pickled code)."""

from __future__ import annotations

from pathlib import Path

from synergyseg.errors import InputDataError
from synergyseg.model import ModelSpec, VGGUNet
from synergyseg.weights import safe_load


def load_checkpoint(path: str | Path, expected_model: dict | None = None) -> tuple[VGGUNet, dict]:
    """Rebuild a trained model (in eval mode) and its metadata from a checkpoint file.

    ``expected_model`` (the ``model`` config section) is compared with the architecture the
    checkpoint was trained with, so a checkpoint of another width or variant is refused by name
    rather than silently predicting with another network.
    """
    path = Path(path)
    checkpoint = safe_load(path)
    if not isinstance(checkpoint, dict) or {"state_dict", "meta"} - set(checkpoint):
        raise InputDataError(path, "is not a synergyseg checkpoint (needs state_dict and meta)")
    try:
        trained = dict(checkpoint["meta"]["spec"]["model"])
        model = VGGUNet(ModelSpec(**trained))
    except (KeyError, TypeError, ValueError) as err:
        raise InputDataError(
            path, f"has no valid model settings in its metadata ({err!r})"
        ) from err
    if expected_model is not None:
        differing = {
            key: (trained.get(key), value)
            for key, value in expected_model.items()
            if trained.get(key) != value
        }
        if differing:
            shown = ", ".join(f"{k} {a!r} (config {b!r})" for k, (a, b) in differing.items())
            raise InputDataError(path, f"was trained with another model: {shown}")
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise InputDataError(path, f"does not fit its own model settings ({err})") from err
    return model.eval(), checkpoint["meta"]

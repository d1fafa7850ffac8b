"""Grad-CAM files and the rows of the images they show: written by the GPU job, read by the
figures. numpy and pandas only, so the figure jobs never import torch.

A Grad-CAM file (.npz) holds ``slice_ids`` (N,), ``cam`` (N, 2, H, W) float32 (eq. 3, the mean
of the replicates' maps; axis 1 is the target class), ``mask`` (N, H, W) bool (eq. 2),
``replicates`` and ``layer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from synergyseg.atomic import atomic_path
from synergyseg.errors import InputDataError
from synergyseg.manifests import read_split

CLASSES = (0, 1)


def chosen_test_rows(
    split_csv: str | Path, images_csv: str | Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(choice table, split rows) of the images a figure shows, in the order of ``images_csv``;
    an image that is not on the split's test side is an error naming the choice file."""
    choice = pd.read_csv(images_csv, dtype={"slice_id": str, "label": str})
    if "slice_id" not in choice.columns or choice.empty:
        raise InputDataError(images_csv, "lists no slice_id to show")
    rows = read_split(split_csv, "test").set_index("slice_id", drop=False)
    missing = sorted(set(choice["slice_id"]) - set(rows.index))
    if missing:
        raise InputDataError(images_csv, f"slices {missing[:5]} are not on the test side")
    return choice, rows.loc[choice["slice_id"]].reset_index(drop=True)


def write_cams(
    out: str | Path,
    slice_ids: Sequence[str],
    cam: np.ndarray,
    mask: np.ndarray,
    replicates: int,
    layer: str,
) -> None:
    """Write a Grad-CAM file atomically."""
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            slice_ids=np.asarray(slice_ids, dtype=str),
            cam=np.asarray(cam, dtype=np.float32),
            mask=np.asarray(mask, dtype=bool),
            replicates=np.int64(replicates),
            layer=np.array(layer),
        )


def read_cams(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a Grad-CAM file, checked, with errors that name the file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as err:
        raise InputDataError(path, f"is not a readable Grad-CAM file ({err})") from err
    needed = {"slice_ids", "cam", "mask", "replicates", "layer"}
    if needed - set(arrays):
        raise InputDataError(path, f"is not a Grad-CAM file: lacks {sorted(needed - set(arrays))}")
    n = len(arrays["slice_ids"])
    cam, mask = arrays["cam"], arrays["mask"]
    if cam.ndim != 4 or cam.shape[:2] != (n, len(CLASSES)) or mask.shape != (n, *cam.shape[2:]):
        raise InputDataError(
            path, f"has cam {cam.shape} and mask {mask.shape} for {n} images (need N,2,H,W / N,H,W)"
        )
    arrays["slice_ids"] = arrays["slice_ids"].astype(str)
    return arrays

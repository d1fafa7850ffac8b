"""Checked image file I/O (OpenCV): a missing or undecodable file is an error that names it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from synergyseg.atomic import atomic_path
from synergyseg.errors import InputDataError


def write_image(image: np.ndarray, path: str | Path, params: list[int] | None = None) -> None:
    """Write an image with OpenCV (RGB arrays are converted to OpenCV's BGR order), atomically."""
    array = np.ascontiguousarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), array, params or []):
            raise OSError(f"{path}: OpenCV could not write the image")


def _imread(path: Path, flags: int, what: str) -> np.ndarray:
    """cv2.imread that names the file instead of returning None."""
    if not path.is_file():
        raise InputDataError(path, f"{what} file is missing")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise InputDataError(path, "not a readable image (corrupt or unsupported format)")
    return image


def read_rgb(path: str | Path) -> np.ndarray:
    """Read a colour image as an RGB uint8 array; a missing or undecodable file is a named error."""
    return cv2.cvtColor(_imread(Path(path), cv2.IMREAD_COLOR, "image"), cv2.COLOR_BGR2RGB)


def read_gray(path: str | Path) -> np.ndarray:
    """Read a single-channel label/mask image unchanged (no colour conversion, no rescaling)."""
    path = Path(path)
    image = _imread(path, cv2.IMREAD_UNCHANGED, "mask")
    if image.ndim == 3:
        # Some tools save label maps as 3 identical channels; anything else is not a label map.
        if not (
            np.array_equal(image[..., 0], image[..., 1])
            and np.array_equal(image[..., 0], image[..., 2])
        ):
            raise InputDataError(
                path, "mask has colour channels that differ; expected a gray label map"
            )
        image = image[..., 0]
    return image


def read_binary_mask(path: str | Path, foreground: int = 255) -> np.ndarray:
    """Read a 0/``foreground`` mask as a {0, 1} uint8 array, refusing any other value."""
    mask = read_gray(path)
    values = np.unique(mask)
    unexpected = sorted(set(values.tolist()) - {0, foreground})
    if unexpected:
        shown = ", ".join(str(v) for v in unexpected[:8])
        raise InputDataError(
            path, f"mask is not binary: found values {shown} besides 0 and {foreground}"
        )
    return (mask == foreground).astype(np.uint8)

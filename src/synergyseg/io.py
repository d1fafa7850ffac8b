"""Atomic file output and checked image I/O.

A killed job must never leave a file that looks finished: every writer here writes to a
temporary sibling and renames it into place (``os.replace`` is atomic on POSIX filesystems).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from synergyseg.errors import InputDataError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    ``suffix`` defaults to the target's own suffix so that writers which infer the format from
    the extension (OpenCV, SimpleITK) keep working.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would have
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` as a whole when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV atomically with a fixed float format, so reruns are byte-identical."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


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


def read_predictions(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(slice_ids, probs uint8) from a prediction file, without allowing pickles."""
    with np.load(path, allow_pickle=False) as data:
        return data["slice_ids"], data["probs"]

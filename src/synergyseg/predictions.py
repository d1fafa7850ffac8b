"""Prediction files: P(class 1) of every test image of one model, written and read in blocks.

A prediction file is an ordinary ``.npz`` (``np.load`` opens it) holding ``slice_ids`` (N,) and
``probs`` (N, H, W) uint8 = round(255 · P), in split-manifest order. uint8 keeps 1/255
resolution, which the metrics (threshold 0.5 and AUROC over 256 levels) use exactly (a bf16
model's P is itself coarser near 0.5: docs/training.md, "Precision").

At paper size one file holds up to 41k maps of 512x512 (10 GB before compression), so neither
side ever holds it whole: :class:`PredictionWriter` streams blocks of maps into the compressed
``probs.npy`` member and :class:`PredictionReader` streams them back out. Files are written to
a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from synergyseg.atomic import atomic_path
from synergyseg.errors import InputDataError

# what reading a damaged or foreign .npz raises, at its opening or in the middle of its maps
UNREADABLE = (OSError, EOFError, zlib.error, zipfile.BadZipFile)

# zlib level 1: about three times faster than the default 6 and within ~10 % of its size on
# probability maps, which matters when a GPU job would otherwise wait for the compressor
COMPRESSION_LEVEL = 1


def _uint8_header(shape: tuple[int, ...]) -> dict:
    return {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}


class PredictionWriter:
    """Write one model's maps in blocks: ``with PredictionWriter(...) as w: w.write(block)``."""

    def __init__(self, path: str | Path, slice_ids, height: int, width: int):
        self.path = Path(path)
        self.slice_ids = np.asarray([str(s) for s in slice_ids])
        self.shape = (len(self.slice_ids), height, width)
        self.written = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> PredictionWriter:
        tmp = self._stack.enter_context(atomic_path(self.path, suffix=".npz"))
        archive = self._stack.enter_context(
            zipfile.ZipFile(
                tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESSION_LEVEL
            )
        )
        with archive.open("slice_ids.npy", "w") as member:
            np.lib.format.write_array(member, self.slice_ids, allow_pickle=False)
        self._member = self._stack.enter_context(archive.open("probs.npy", "w", force_zip64=True))
        np.lib.format.write_array_header_1_0(self._member, _uint8_header(self.shape))
        return self

    def write(self, probs: np.ndarray) -> None:
        """Append maps (k, H, W) uint8 for the next k slices."""
        probs = np.ascontiguousarray(probs, dtype=np.uint8)
        if probs.shape[1:] != self.shape[1:] or self.written + len(probs) > self.shape[0]:
            raise ValueError(
                f"{self.path}: block {probs.shape} does not fit the remaining "
                f"{self.shape[0] - self.written} maps of {self.shape[1:]}"
            )
        self._member.write(probs.tobytes())
        self.written += len(probs)

    def __exit__(self, kind, value, traceback) -> bool:
        """Rename into place when every map was written; otherwise remove the partial file."""
        if kind is None and self.written != self.shape[0]:
            error = ValueError(f"{self.path}: {self.written} of {self.shape[0]} maps written")
            self._stack.__exit__(ValueError, error, None)
            raise error
        return self._stack.__exit__(kind, value, traceback)


class PredictionReader:
    """Read a prediction file's slice ids at once and its maps block by block."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open("slice_ids.npy") as member:
                self.slice_ids = np.lib.format.read_array(member, allow_pickle=False).astype(str)
                self.shape = self._probs_shape(archive)
        except (*UNREADABLE, KeyError, ValueError) as err:
            raise InputDataError(self.path, f"is not a readable prediction file ({err})") from err
        if self.shape[0] != len(self.slice_ids):  # maps would be scored against other slices
            raise InputDataError(
                self.path,
                f"holds {self.shape[0]} maps for {len(self.slice_ids)} slice ids: "
                "not a prediction file this workflow wrote; delete it to predict again",
            )

    @staticmethod
    def _probs_shape(archive: zipfile.ZipFile) -> tuple[int, ...]:
        with archive.open("probs.npy") as member:
            np.lib.format.read_magic(member)
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        if dtype != np.uint8 or len(shape) != 3 or fortran_order:
            layout = "Fortran-ordered " if fortran_order else ""
            raise ValueError(
                f"probs must be C-ordered uint8 (N, H, W), found {layout}{dtype} {shape}"
            )
        return tuple(shape)

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        """Consecutive blocks of at most ``size`` maps, in file order."""
        n, height, width = self.shape
        per_map = height * width
        with zipfile.ZipFile(self.path) as archive, archive.open("probs.npy") as member:
            np.lib.format.read_magic(member)
            np.lib.format.read_array_header_1_0(member)
            for start in range(0, n, max(1, size)):
                count = min(size, n - start)
                try:
                    data = member.read(count * per_map)
                except UNREADABLE as err:
                    # a damaged file surfaces only here, minutes into a scoring job
                    raise InputDataError(
                        self.path, f"is corrupt at map {start} ({err}); delete it to predict again"
                    ) from err
                if len(data) != count * per_map:
                    raise InputDataError(self.path, "prediction file is truncated")
                yield np.frombuffer(data, dtype=np.uint8).reshape(count, height, width)

    def check_ids(self, slice_ids, source: str | Path) -> None:
        if list(self.slice_ids) != [str(s) for s in slice_ids]:
            raise InputDataError(self.path, f"slice ids differ from the test side of {source}")

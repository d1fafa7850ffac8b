"""The slice store: a dataset's slices and masks decoded once, as arrays every job memory-maps.

``images.npy`` holds uint8 (N, H, W, C) (C = 1 for CT, 3 for RGB: the layout OpenCV decodes,
which is also PyTorch's channels_last) and ``masks.npy`` the {0, 1} masks bit-packed along the
width, uint8 (N, H, ceil(W / 8)). Row ``i`` is the slice in the manifest row whose ``row``
column is ``i``. Jobs open both with ``np.load(mmap_mode="r")`` and read only the rows they
need, so jobs on one node share the page cache instead of each decoding tens of thousands of
PNGs into a private copy (the kidney store is 12 GB of images and 1.5 GB of masks).

The writer appends slices as they are made (the number of slices of a CT dataset is known only
at the end) into hidden temporary files, then writes the final shape into the ``.npy`` headers
and renames both into place: a killed job leaves no store that looks finished.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from synergyseg.atomic import atomic_path
from synergyseg.errors import InputDataError

IMAGES = "images.npy"
MASKS = "masks.npy"
# a fixed header size (a multiple of 64, as numpy aligns them) leaves room for any shape, so
# the header can be rewritten in place once the number of rows is known
HEADER_BYTES = 128
NPY_MAGIC = b"\x93NUMPY\x01\x00"


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header for a C-ordered uint8 array, padded to HEADER_BYTES."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    room = HEADER_BYTES - len(NPY_MAGIC) - 2
    if len(text) + 1 > room:
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte header")
    body = (text + " " * (room - len(text) - 1) + "\n").encode("latin1")
    return NPY_MAGIC + len(body).to_bytes(2, "little") + body


def packed_width(width: int) -> int:
    return (width + 7) // 8


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """{0, 1} masks (..., H, W) → bits packed along W (..., H, ceil(W / 8))."""
    return np.packbits(np.asarray(masks, dtype=np.uint8), axis=-1)


def unpack_masks(packed: np.ndarray, width: int) -> np.ndarray:
    """Inverse of :func:`pack_masks`: uint8 {0, 1} masks (..., H, width)."""
    return np.unpackbits(packed, axis=-1, count=width)


class StoreWriter:
    """Append slices to a new store in ``folder``; :meth:`close` publishes it atomically.

    Use as a context manager: leaving it with an exception removes the temporary files.
    """

    def __init__(self, folder: str | Path, height: int, width: int, channels: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.height, self.width, self.channels = height, width, channels
        self.rows = 0
        self._paths = {name: self.folder / f".{name}.partial" for name in (IMAGES, MASKS)}
        self._files = {name: open(path, "wb") for name, path in self._paths.items()}  # noqa: SIM115
        for handle in self._files.values():
            handle.write(b"\0" * HEADER_BYTES)

    def append(self, images: np.ndarray, masks: np.ndarray) -> range:
        """Add slices (k, H, W[, C]) and their {0, 1} masks (k, H, W); return their rows."""
        images = np.asarray(images, dtype=np.uint8)
        if images.ndim == 3:
            images = images[..., None]
        expected = (self.height, self.width, self.channels)
        if images.shape[1:] != expected or masks.shape != images.shape[:3]:
            raise ValueError(
                f"slices {images.shape[1:]} and masks {masks.shape[1:]} do not fit a store "
                f"of {expected} (height, width, channels)"
            )
        self._files[IMAGES].write(np.ascontiguousarray(images).tobytes())
        self._files[MASKS].write(pack_masks(masks).tobytes())
        start, self.rows = self.rows, self.rows + len(images)
        return range(start, self.rows)

    def close(self) -> None:
        shapes = {
            IMAGES: (self.rows, self.height, self.width, self.channels),
            MASKS: (self.rows, self.height, packed_width(self.width)),
        }
        for name, handle in self._files.items():
            handle.seek(0)
            handle.write(_npy_header(shapes[name]))
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        for name, partial in self._paths.items():
            with atomic_path(self.folder / name) as tmp:
                os.replace(partial, tmp)

    def abort(self) -> None:
        for handle in self._files.values():
            handle.close()
        for partial in self._paths.values():
            partial.unlink(missing_ok=True)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class SliceStore:
    """Read access to a store: rows of images and masks, copied out of the memory maps."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        try:
            self._images = np.load(self.folder / IMAGES, mmap_mode="r")
            self._masks = np.load(self.folder / MASKS, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise InputDataError(self.folder, f"is not a readable slice store ({err})") from err
        n, self.height, self.width, self.channels = self._images.shape
        if self._masks.shape != (n, self.height, packed_width(self.width)):
            raise InputDataError(
                self.folder / MASKS,
                f"has shape {self._masks.shape}, the images {self._images.shape}",
            )

    def __len__(self) -> int:
        return self._images.shape[0]

    @property
    def image_bytes(self) -> int:
        """Bytes of one image (H·W·C)."""
        return self.height * self.width * self.channels

    @property
    def mask_bytes(self) -> int:
        """Bytes of one bit-packed mask (H·⌈W/8⌉)."""
        return self.height * packed_width(self.width)

    def _rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise InputDataError(
                self.folder, f"has {len(self)} rows; asked for row {int(rows.max())}"
            )
        return rows

    def images(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 (k, H, W, C), a private copy of the rows asked for."""
        return self._images[self._rows(rows)]

    def packed_masks(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self._masks[self._rows(rows)]

    def masks(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 {0, 1} (k, H, W)."""
        return unpack_masks(self.packed_masks(rows), self.width)


def blocks(rows: Sequence[int] | np.ndarray, size: int) -> Iterator[tuple[slice, np.ndarray]]:
    """(positions, rows) in consecutive blocks of at most ``size``: the unit of bounded memory."""
    rows = np.asarray(rows, dtype=np.int64)
    for start in range(0, len(rows), max(1, size)):
        stop = min(start + size, len(rows))
        yield slice(start, stop), rows[start:stop]


def block_size(image_bytes: int, budget_bytes: int = 64 << 20) -> int:
    """Images per block so that one block of uint8 images stays near ``budget_bytes``."""
    return max(1, budget_bytes // max(1, image_bytes))


def manifest_rows(table) -> np.ndarray:
    """The store rows of manifest/split rows (their ``row`` column), checked."""
    if "row" not in table.columns:
        raise ValueError("manifest has no 'row' column: re-run make_slices to build the store")
    return table["row"].to_numpy(dtype=np.int64)


def read_npy_shape(path: str | Path) -> tuple[int, ...]:
    """The shape in a ``.npy`` header, without mapping the data (cheap, for resource sizing)."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(handle)
    return tuple(shape)

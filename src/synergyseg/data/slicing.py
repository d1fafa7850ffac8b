"""Turn raw cases into fixed-size 2-D slices, a slice store and one manifest row per slice.

Outputs per dataset: the slice store (:mod:`synergyseg.store`: ``images.npy``, ``masks.npy``),
which every later stage reads; optionally PNG copies for people to look at,
``{png_dir}/images/{slice_id}.png`` (RGB or gray uint8) and ``{png_dir}/masks/{slice_id}.png``
(0/255); and a manifest with the columns of :data:`MANIFEST_COLUMNS`, sorted by slice id, whose
``row`` column is the slice's row in the store. Records are sliced in parallel but stored in
record order, so reruns are byte-identical. The store and the PNG folder are published
atomically and the manifest is written last: a killed job never leaves a manifest that looks
finished.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import SimpleITK as sitk

from synergyseg.atomic import atomic_directory, write_csv
from synergyseg.data import consensus, ct, sources
from synergyseg.errors import InputDataError
from synergyseg.imageio import read_binary_mask, read_gray, read_rgb, write_image
from synergyseg.resources import LARGEST_IMAGE_PIXELS
from synergyseg.store import StoreWriter

log = logging.getLogger(__name__)
MORE_SHOWN = 10  # bad inputs named in the error itself; the log has every one

MANIFEST_COLUMNS = ["slice_id", "row", "image", "mask", "case", "label", "foreground_pixels"]
KITS_LABELS = frozenset({0, 1, 2})  # background, kidney, tumour
SLAB = 32  # axial slices windowed and resized at a time


@dataclass(frozen=True)
class SliceSettings:
    """How raw data become network inputs (from the dataset's ``slices`` config)."""

    width: int
    height: int
    ct_window: tuple[float, float] = (-512.0, 512.0)
    consensus: str = "majority"
    mask_foreground: int = 255


def resize_pair(image: np.ndarray, mask: np.ndarray, width: int, height: int):
    """Resize an image (area averaging when it shrinks on both axes, else bilinear) and its
    {0,1} mask (nearest neighbour) to width x height."""
    if image.shape[:2] == (height, width):
        return image, mask
    shrinking = image.shape[0] >= height and image.shape[1] >= width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return (
        cv2.resize(image, (width, height), interpolation=interpolation),
        cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST),
    )


def _check_same_size(
    image: np.ndarray, mask: np.ndarray, mask_path: Path, image_path: Path
) -> None:
    if image.shape[:2] != mask.shape[:2]:
        raise InputDataError(
            mask_path,
            f"mask is {mask.shape[1]}x{mask.shape[0]} but its image {image_path.name} is "
            f"{image.shape[1]}x{image.shape[0]} (width x height)",
        )


@dataclass
class Slice:
    """One network input: uint8 image (H, W[, C]), {0, 1} mask (H, W), case and label."""

    slice_id: str
    image: np.ndarray
    mask: np.ndarray
    case: str
    label: str


def slice_rgb(record: sources.ImageRecord, settings: SliceSettings) -> list[Slice]:
    """ISIC / custom: one image, one binary mask (0/``mask_foreground``)."""
    image = read_rgb(record.image)
    mask = read_binary_mask(record.masks[0], foreground=settings.mask_foreground)
    _check_same_size(image, mask, record.masks[0], record.image)
    image, mask = resize_pair(image, mask, settings.width, settings.height)
    return [Slice(record.slice_id, image, mask, record.case, record.label)]


def slice_gleason(record: sources.ImageRecord, settings: SliceSettings) -> list[Slice]:
    """Gleason2019: consensus of the available raters' tumour maps (grade 3–5).

    Each rater map is binarised as it is read, so a core holds one byte per pixel per rater
    beside its image. The label is read off the resized mask, as for CT slices: a tumour too
    small to survive the resize must not leave a "tumour" core with an empty mask.
    """
    image = read_rgb(record.image)
    maps = []
    for path in record.masks:
        rater = read_gray(path)
        unexpected = sorted(set(np.unique(rater).tolist()) - consensus.GLEASON_VALUES)
        if unexpected:
            raise InputDataError(path, f"rater map has values {unexpected} outside {{0,1,3,4,5,6}}")
        _check_same_size(image, rater, path, record.image)
        maps.append(consensus.tumour_map(rater))
        del rater
    mask = consensus.consensus_tumour_mask(maps, settings.consensus)
    del maps
    image, mask = resize_pair(image, mask, settings.width, settings.height)
    label = "tumour" if mask.any() else "no tumour"
    return [Slice(record.slice_id, image, mask, record.case, label)]


def _read_stack(path: Path) -> tuple[np.ndarray, tuple]:
    """A volume's axial stack and its voxel grid in patient space; the SimpleITK image is
    dropped here, so a case is held once (as the stack), not twice."""
    image = ct.read_volume(path)
    stack = _canonical_stack(image, path)
    return stack, ct.physical_grid(image)


def _canonical_stack(image: sitk.Image, path: Path) -> np.ndarray:
    try:
        return ct.axial_stack(image)
    except ValueError as err:
        raise InputDataError(path, str(err)) from err


def slice_volume(record: sources.VolumeRecord, settings: SliceSettings) -> list[Slice]:
    """KiTS19: every axial slice, HU windowed to uint8; kidney and tumour both become foreground.

    Non-square planes are padded to a square (air for the image, background for the mask) and
    then resized, so the anatomy keeps its aspect ratio.
    """
    hu, imaging_grid = _read_stack(record.imaging)
    seg, segmentation_grid = _read_stack(record.segmentation)
    if hu.shape == seg.shape and (
        difference := ct.geometry_difference(imaging_grid, segmentation_grid)
    ):
        raise InputDataError(record.segmentation, f"segmentation has {difference}")
    if hu.shape != seg.shape:
        raise InputDataError(
            record.segmentation,
            f"segmentation has shape {seg.shape} (slices, rows, cols), the imaging {hu.shape}",
        )
    seg = ct.align_to_imaging(seg, imaging_grid, segmentation_grid)
    lower, upper = settings.ct_window
    rows = []
    # slab by slab, so the float and padded temporaries never cover the whole volume
    for start in range(0, hu.shape[0], SLAB):
        labels = seg[start : start + SLAB]
        unexpected = sorted(set(np.unique(labels).tolist()) - KITS_LABELS)
        if unexpected:
            raise InputDataError(record.segmentation, f"labels {unexpected} outside {{0, 1, 2}}")
        gray = ct.pad_to_square(ct.window_to_uint8(hu[start : start + SLAB], lower, upper), fill=0)
        mask = ct.pad_to_square((labels > 0).astype(np.uint8), fill=0)
        for offset in range(gray.shape[0]):
            image, target = resize_pair(gray[offset], mask[offset], settings.width, settings.height)
            label = "kidney" if target.any() else "no kidney"
            slice_id = f"{record.case}_s{start + offset:04d}"
            rows.append(Slice(slice_id, image, target, record.case, label))
    return rows


SLICERS: dict[str, Callable] = {
    "isic": slice_rgb,
    "custom": slice_rgb,
    "gleason2019": slice_gleason,
    "kits19": slice_volume,
}


def find_records(
    raw_format: str,
    raw: str | Path,
    labels_csv: str | Path | None = None,
    cases: list[str] | None = None,
) -> list:
    """Records of one raw layout (``raw`` is a folder, or the CSV for the ``custom`` format);
    ``cases`` restricts KiTS19 to the listed case folders (all must exist). A dataset left with
    no record is an error here, not an empty slice store that fails later far from its cause."""
    readers = {
        "isic": lambda: sources.isic_records(raw, labels_csv),
        "gleason2019": lambda: sources.gleason_records(raw),
        "kits19": lambda: sources.kits_records(raw, cases),
        "custom": lambda: sources.custom_records(raw),
    }
    if raw_format not in readers:
        raise ValueError(f"unknown raw format {raw_format!r}; choose one of {sorted(SLICERS)}")
    records = readers[raw_format]()
    if not records:
        raise InputDataError(raw, f"no {raw_format} images or cases found: the dataset is empty")
    return records


def ordered_map(function: Callable, items: list, threads: int) -> Iterator:
    """``function`` over ``items`` on ``threads`` threads, results in input order, with at most
    ``threads`` + 1 results held at once (a CT case is hundreds of MB of slices)."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) > max(1, threads):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # after an error (not a bad input: make_slices returns those), stop
            for future in pending:
                future.cancel()


def _channels(raw_format: str) -> int:
    return 1 if raw_format == "kits19" else 3


def largest_record_pixels(
    raw_format: str, raw: str | Path, labels_csv=None, cases: list[str] | None = None
) -> int:
    """Pixels (voxels for CT) of the largest record a slicing job will hold, to size its
    memory before it runs: CT volumes from their headers alone; 2-D sources are sized for
    the largest image they could hold (resources.LARGEST_IMAGE_PIXELS) rather than read."""
    if raw_format != "kits19":
        return LARGEST_IMAGE_PIXELS
    records = find_records(raw_format, raw, labels_csv, cases)
    return max(ct.volume_voxels(record.imaging) for record in records)


def make_slices(
    raw_format: str,
    records: Iterable,
    settings: SliceSettings,
    store_dir: str | Path,
    manifest: str | Path,
    png_dir: str | Path | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Slice every record into the store in ``store_dir`` (and PNGs into ``png_dir`` when
    given), then write the manifest (sorted by slice id).

    A record that cannot be used (unreadable file, size mismatch, non-binary mask...) is
    logged and the others are still sliced, so that one run names every bad file of a
    dataset instead of one per run; the job then fails, writing nothing.
    """
    slicer = SLICERS[raw_format]
    records = list(records)
    rows, problems = [], []
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(
            StoreWriter(store_dir, settings.height, settings.width, _channels(raw_format))
        )
        png_tmp = stack.enter_context(atomic_directory(png_dir)) if png_dir else None

        def work(record) -> list[Slice] | InputDataError:
            try:
                slices = slicer(record, settings)
            except InputDataError as err:
                return err
            # PNG encoding is the slow part: on the worker threads, and not once a bad input
            # has made the job certain to fail (its records are still read, to be named)
            if png_tmp is not None and not problems:
                for item in slices:
                    write_image(item.image, png_tmp / "images" / f"{item.slice_id}.png")
                    write_image(
                        item.mask * np.uint8(255), png_tmp / "masks" / f"{item.slice_id}.png"
                    )
            return slices

        for slices in ordered_map(work, records, threads):
            if isinstance(slices, InputDataError):
                log.error("%s", slices)
                problems.append(slices)
                continue
            if not slices or problems:  # nothing more is stored once the job must fail
                continue
            stored = store.append(
                np.stack([s.image for s in slices]), np.stack([s.mask for s in slices])
            )
            rows += [
                _manifest_row(item, row, png_dir) for item, row in zip(slices, stored, strict=True)
            ]
        if problems:
            first, others = problems[0], problems[1:]
            detail = first.problem
            if others:
                shown = "; ".join(str(err) for err in others[:MORE_SHOWN])
                etc = "; ..." if len(others) > MORE_SHOWN else ""
                detail += f" (and {len(others)} more bad input(s), all in the log: {shown}{etc})"
            raise InputDataError(first.path, detail)
        ids = pd.Series([r["slice_id"] for r in rows], dtype=str)
        if ids.duplicated().any():
            duplicate = ids[ids.duplicated()].iloc[0]
            raise InputDataError(store_dir, f"two inputs produce the slice id {duplicate!r}")
    frame = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    frame = frame.sort_values("slice_id", kind="stable").reset_index(drop=True)
    write_csv(frame, manifest)
    return frame


def _manifest_row(item: Slice, row: int, png_dir: str | Path | None) -> dict:
    """The manifest row of one stored slice (PNG paths empty when no PNGs are written)."""
    image_path = mask_path = ""
    if png_dir is not None:
        image_path = (Path(png_dir) / "images" / f"{item.slice_id}.png").as_posix()
        mask_path = (Path(png_dir) / "masks" / f"{item.slice_id}.png").as_posix()
    return {
        "slice_id": item.slice_id,
        "row": row,
        "image": image_path,
        "mask": mask_path,
        "case": item.case,
        "label": item.label,
        "foreground_pixels": int(item.mask.sum()),
    }


def inventory(records: Iterable, out_csv: str | Path) -> pd.DataFrame:
    """Write the list of files a dataset was found to have (with sizes), for provenance."""
    rows = []
    for record in records:
        paths = (
            [record.image, *record.masks]
            if hasattr(record, "masks")
            else [record.imaging, record.segmentation]
        )
        for path in paths:
            size = (
                sum(p.stat().st_size for p in path.iterdir())
                if path.is_dir()
                else path.stat().st_size
            )
            rows.append(
                {
                    "record": getattr(record, "slice_id", getattr(record, "case", "")),
                    "path": str(path),
                    "bytes": size,
                }
            )
    frame = pd.DataFrame(rows, columns=["record", "path", "bytes"])
    write_csv(frame, out_csv)
    return frame

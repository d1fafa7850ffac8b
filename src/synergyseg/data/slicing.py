"""Turn raw cases into fixed-size 2-D slices and one manifest row per slice.

Outputs per dataset: ``{png_dir}/images/{slice_id}.png`` (RGB or gray uint8),
``{png_dir}/masks/{slice_id}.png`` (0/255), and a manifest with the columns of
:data:`MANIFEST_COLUMNS`. The PNG folder is built in a temporary sibling and renamed into place
and the manifest is written last, so a killed job never leaves a manifest that looks finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import SimpleITK as sitk

from synergyseg.data import consensus, ct, sources
from synergyseg.errors import InputDataError
from synergyseg.io import (
    atomic_directory,
    read_binary_mask,
    read_gray,
    read_rgb,
    write_csv,
    write_image,
)

MANIFEST_COLUMNS = ["slice_id", "image", "mask", "case", "label", "foreground_pixels"]
KITS_LABELS = frozenset({0, 1, 2})  # background, kidney, tumour


@dataclass(frozen=True)
class SliceSettings:
    """How raw data become network inputs (from the dataset's ``slices`` config)."""

    width: int
    height: int
    ct_window: tuple[float, float] = (-512.0, 512.0)
    consensus: str = "majority"
    mask_foreground: int = 255


def resize_pair(image: np.ndarray, mask: np.ndarray, width: int, height: int):
    """Resize an image (area averaging) and its {0,1} mask (nearest neighbour) to width x height."""
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


def _row(slice_id: str, png_dir: Path, final_dir: Path, image, mask, case: str, label: str) -> dict:
    """Write one slice pair into ``png_dir``; return its manifest row (paths in ``final_dir``)."""
    write_image(image, png_dir / "images" / f"{slice_id}.png")
    write_image(mask * np.uint8(255), png_dir / "masks" / f"{slice_id}.png")
    return {
        "slice_id": slice_id,
        "image": (final_dir / "images" / f"{slice_id}.png").as_posix(),
        "mask": (final_dir / "masks" / f"{slice_id}.png").as_posix(),
        "case": case,
        "label": label,
        "foreground_pixels": int(mask.sum()),
    }


def slice_rgb(
    record: sources.ImageRecord, settings: SliceSettings, png_dir: Path, final_dir: Path
) -> list[dict]:
    """ISIC / custom: one image, one binary mask (0/``mask_foreground``)."""
    image = read_rgb(record.image)
    mask = read_binary_mask(record.masks[0], foreground=settings.mask_foreground)
    _check_same_size(image, mask, record.masks[0], record.image)
    image, mask = resize_pair(image, mask, settings.width, settings.height)
    return [_row(record.slice_id, png_dir, final_dir, image, mask, record.case, record.label)]


def slice_gleason(
    record: sources.ImageRecord, settings: SliceSettings, png_dir: Path, final_dir: Path
) -> list[dict]:
    """Gleason2019: consensus of the available rater maps, then tumour = grade 3–5."""
    image = read_rgb(record.image)
    maps = []
    for path in record.masks:
        rater = read_gray(path)
        unexpected = sorted(set(np.unique(rater).tolist()) - consensus.GLEASON_VALUES)
        if unexpected:
            raise InputDataError(path, f"rater map has values {unexpected} outside {{0,1,3,4,5,6}}")
        _check_same_size(image, rater, path, record.image)
        maps.append(consensus.clean_rater_map(rater))
    mask = consensus.consensus_tumour_mask(maps, settings.consensus)
    label = "tumour" if mask.any() else "no tumour"
    image, mask = resize_pair(image, mask, settings.width, settings.height)
    return [_row(record.slice_id, png_dir, final_dir, image, mask, record.case, label)]


def _canonical_stack(image: sitk.Image, path: Path) -> np.ndarray:
    try:
        return ct.axial_stack(image)
    except ValueError as err:
        raise InputDataError(path, str(err)) from err


def slice_volume(
    record: sources.VolumeRecord, settings: SliceSettings, png_dir: Path, final_dir: Path
) -> list[dict]:
    """KiTS19: every axial slice, HU windowed to uint8; kidney and tumour both become foreground.

    Non-square planes are padded to a square (air for the image, background for the mask) and
    then resized, so the anatomy keeps its aspect ratio.
    """
    hu = _canonical_stack(ct.read_volume(record.imaging), record.imaging)
    seg = _canonical_stack(ct.read_volume(record.segmentation), record.segmentation)
    if hu.shape != seg.shape:
        raise InputDataError(
            record.segmentation,
            f"segmentation has shape {seg.shape} (slices, rows, cols), the imaging {hu.shape}",
        )
    unexpected = sorted(set(np.unique(seg).tolist()) - KITS_LABELS)
    if unexpected:
        raise InputDataError(record.segmentation, f"labels {unexpected} outside {{0, 1, 2}}")
    lower, upper = settings.ct_window
    gray = ct.pad_to_square(ct.window_to_uint8(hu, lower, upper), fill=0)
    mask = ct.pad_to_square((seg > 0).astype(np.uint8), fill=0)
    rows = []
    for index in range(gray.shape[0]):
        image, target = resize_pair(gray[index], mask[index], settings.width, settings.height)
        label = "kidney" if target.any() else "no kidney"
        rows.append(
            _row(
                f"{record.case}_s{index:04d}", png_dir, final_dir, image, target, record.case, label
            )
        )
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
    ``cases`` restricts KiTS19 to the listed case folders (all must exist)."""
    if raw_format == "isic":
        return sources.isic_records(raw, labels_csv)
    if raw_format == "gleason2019":
        return sources.gleason_records(raw)
    if raw_format == "kits19":
        return sources.kits_records(raw, cases)
    if raw_format == "custom":
        return sources.custom_records(raw)
    raise ValueError(f"unknown raw format {raw_format!r}; choose one of {sorted(SLICERS)}")


def make_slices(
    raw_format: str,
    records: Iterable,
    settings: SliceSettings,
    png_dir: str | Path,
    manifest: str | Path,
    threads: int = 1,
) -> pd.DataFrame:
    """Slice every record into ``png_dir`` and write the manifest (sorted by slice id)."""
    slicer = SLICERS[raw_format]
    final_dir = Path(png_dir)
    records = list(records)
    with atomic_directory(final_dir) as tmp_dir:
        pool = ThreadPoolExecutor(max_workers=max(1, threads))
        try:
            per_record = list(pool.map(lambda r: slicer(r, settings, tmp_dir, final_dir), records))
        finally:  # after the first bad case, do not slice the rest
            pool.shutdown(wait=True, cancel_futures=True)
    frame = pd.DataFrame([row for rows in per_record for row in rows], columns=MANIFEST_COLUMNS)
    if frame["slice_id"].duplicated().any():
        dup = frame.loc[frame["slice_id"].duplicated(), "slice_id"].iloc[0]
        raise InputDataError(final_dir, f"two inputs produce the slice id {dup!r}")
    frame = frame.sort_values("slice_id", kind="stable").reset_index(drop=True)
    write_csv(frame, manifest)
    return frame


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

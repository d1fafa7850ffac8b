"""CT volumes: read NIfTI or DICOM series with SimpleITK, find the axial axis, window HU to uint8.

KiTS19 stores its NIfTI volumes with the *slice* axis first (voxel axis 0 runs head–foot),
whereas a DICOM series has it last; rather than trusting either convention, the axial axis is
taken from the image's direction cosines, so both layouts (and any resampled export) give the
same axial slices.
"""

from __future__ import annotations

import gzip
import itertools
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from synergyseg.errors import InputDataError

DICOM_REQUIRED_TAGS = (
    "Rows",
    "Columns",
    "RescaleSlope",
    "RescaleIntercept",
    "ImagePositionPatient",
    "ImageOrientationPatient",
)
# Slice gaps may differ from the series' typical gap by this share before the series is refused:
# positions are decimal strings, often rounded (0.6 / 0.7 mm for 0.625 mm slices), while a
# missing slice doubles a gap and a duplicated one empties it.
SPACING_TOLERANCE = 0.25
# Axial slices of a volume tilted further than this (beyond a usual gantry tilt) would cut the
# anatomy obliquely: such volumes are refused rather than sliced.
MAX_TILT_DEGREES = 10


def series_files(folder: Path) -> list[Path]:
    """The files of a DICOM series folder (hidden files aside), in name order."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputDataError(folder, "DICOM folder contains no files")
    return files


def read_dicom_header(path: Path):
    """A DICOM file's header (no pixels); a file that is not DICOM is a named error."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise InputDataError(path, f"not a readable DICOM file ({err})") from err


def check_dicom_series(folder: str | Path) -> list[Path]:
    """Check every file of a DICOM series with pydicom before SimpleITK reads the pixels.

    SimpleITK/GDCM silently skips unreadable files and defaults missing rescale tags to 1/0,
    which would shift every HU value; pydicom lets us name the broken file instead.
    """
    folder = Path(folder)
    files = series_files(folder)
    shape = None
    headers = []
    for path in files:
        header = read_dicom_header(path)
        missing = [tag for tag in DICOM_REQUIRED_TAGS if tag not in header]
        if missing:
            raise InputDataError(path, f"DICOM header lacks {', '.join(missing)}")
        if shape is None:
            shape = (header.Rows, header.Columns)
        elif (header.Rows, header.Columns) != shape:
            raise InputDataError(
                path,
                f"slice is {header.Rows}x{header.Columns}, the series is {shape[0]}x{shape[1]}",
            )
        headers.append((path, header))
    series = sorted({str(h.get("SeriesInstanceUID", "")) for _, h in headers})
    if len(series) > 1:
        raise InputDataError(
            folder, f"holds {len(series)} DICOM series; put each series in its own folder"
        )
    check_slice_spacing(folder, headers)
    return files


def check_slice_spacing(folder: Path, headers: list) -> None:
    """Refuse a series whose slices are not evenly spaced along the slice normal.

    A slice missing in the middle (an incomplete export or transfer) leaves a double gap;
    SimpleITK then only warns on stderr and returns a volume with one average spacing, so every
    slice beyond the gap sits at the wrong position and no longer matches its segmentation.
    """
    if len(headers) < 2:
        return
    orientation = np.asarray(headers[0][1].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = sorted(
        (float(np.dot(normal, np.asarray(h.ImagePositionPatient, dtype=float))), path)
        for path, h in headers
    )
    gaps = np.diff([position for position, _ in positions])
    typical = float(np.median(gaps))
    if typical <= 0:
        raise InputDataError(folder, "DICOM slices share one position (duplicated slices?)")
    for k, gap in enumerate(gaps):
        if abs(gap - typical) > SPACING_TOLERANCE * typical:
            before, after = positions[k][1].name, positions[k + 1][1].name
            hint = (
                f"about {round(gap / typical) - 1} slice(s) missing"
                if gap > typical
                else "a duplicated or foreign slice"
            )
            raise InputDataError(
                folder,
                f"DICOM slices are not evenly spaced: {gap:.3g} mm between {before} and "
                f"{after}, {typical:.3g} mm elsewhere ({hint})",
            )


def read_volume(path: str | Path) -> sitk.Image:
    """Read a CT volume in HU from a NIfTI file or a folder holding one DICOM series.

    SimpleITK applies the DICOM rescale slope/intercept, so both sources come back in HU.
    """
    path = Path(path)
    if path.is_dir():
        files = check_dicom_series(path)
        reader = sitk.ImageSeriesReader()
        series = reader.GetGDCMSeriesIDs(str(path))
        if len(series) != 1:
            raise InputDataError(path, f"expected one DICOM series, found {len(series)}")
        names = reader.GetGDCMSeriesFileNames(str(path), series[0])
        if len(names) != len(files):
            raise InputDataError(
                path, f"only {len(names)} of {len(files)} files belong to the DICOM series"
            )
        reader.SetFileNames(names)
        try:
            return reader.Execute()
        except RuntimeError as err:
            raise InputDataError(path, f"SimpleITK could not read the DICOM series: {err}") from err
    if not path.is_file():
        raise InputDataError(path, "volume file is missing")
    if path.name.endswith(".gz"):
        check_gzip_complete(path)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        first_line = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown error"
        raise InputDataError(path, f"not a readable volume (corrupt NIfTI?): {first_line}") from err


def check_gzip_complete(path: Path) -> None:
    """Refuse a truncated or corrupt ``.gz`` volume: ITK reads a truncated gzip (an interrupted
    download) without complaint and fills the missing voxels with garbage.

    Fast path: a complete gzip ends with the uncompressed size (mod 2**32), which for a NIfTI
    file its header predicts; a cut file ends with compressed data instead, which matches by
    chance once in 4 billion. Only when they disagree (or the header is not NIfTI-1) is the
    file decompressed to its end, which also catches a corrupt stream.
    """
    try:
        expected = _nifti_bytes(path)
        with open(path, "rb") as handle:
            handle.seek(-4, os.SEEK_END)
            stored = int.from_bytes(handle.read(4), "little")
        if expected is not None and stored == expected % 2**32:
            return
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass
    except (EOFError, OSError, zlib.error) as err:
        raise InputDataError(path, f"truncated or corrupt gzip ({err}); fetch it again") from err


def _nifti_bytes(path: Path) -> int | None:
    """Size of the uncompressed NIfTI-1 file from its header (None if not NIfTI-1)."""
    with gzip.open(path, "rb") as stream:
        header = stream.read(348)
    if len(header) < 348:
        return None
    for order in ("<", ">"):
        if struct.unpack(f"{order}i", header[:4])[0] == 348:
            dims = struct.unpack(f"{order}8h", header[40:56])
            bitpix = struct.unpack(f"{order}h", header[72:74])[0]
            offset = struct.unpack(f"{order}f", header[108:112])[0]
            if not 1 <= dims[0] <= 7 or bitpix <= 0:
                return None
            voxels = int(np.prod([max(1, d) for d in dims[1 : dims[0] + 1]], dtype=np.int64))
            return max(int(offset), 352) + voxels * bitpix // 8
    return None


def physical_grid(image: sitk.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(spacing along patient x, y, z; lowest and highest voxel centre in mm; the sense, +1 or
    -1, in which each axis of :func:`axial_stack` runs along patient z, y, x): the voxel grid
    in patient space, whatever the order and sign of the image axes."""
    axes = world_axes(image)
    spacing = np.zeros(3)
    spacing[axes] = image.GetSpacing()
    corners = np.array(
        [
            image.TransformContinuousIndexToPhysicalPoint([float(i) for i in corner])
            for corner in itertools.product(*[(0, n - 1) for n in image.GetSize()])
        ]
    )
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    senses = np.array([np.sign(direction[world, axes.index(world)]) for world in (2, 1, 0)])
    return spacing, corners.min(axis=0), corners.max(axis=0), senses


def align_to_imaging(segmentation: np.ndarray, imaging_grid: tuple, segmentation_grid: tuple):
    """The segmentation's :func:`axial_stack` in the imaging's voxel order: flipped along every
    axis that the two files store in opposite senses (a RAS NIfTI export beside an LPS DICOM
    series covers the same box with x and y reversed). Call it once
    :func:`geometry_difference` has found the two grids to cover the same box."""
    flips = tuple(np.flatnonzero(imaging_grid[3] != segmentation_grid[3]).tolist())
    return np.flip(segmentation, flips) if flips else segmentation


def geometry_difference(imaging_grid: tuple, segmentation_grid: tuple) -> str | None:
    """How a segmentation's voxel grid differs from its imaging's in patient space (None when
    they agree), given each one's :func:`physical_grid` (so neither volume need be kept for
    the comparison). Equal array shapes are not enough: a segmentation with another spacing,
    origin or direction labels other anatomy than the voxels it lines up with. The two may
    store their axes in different orders and senses (KiTS19 NIfTI vs a DICOM series):
    :func:`align_to_imaging` then puts the segmentation's voxels in the imaging's order."""
    spacing_a, low_a, high_a, _ = imaging_grid
    spacing_b, low_b, high_b, _ = segmentation_grid
    if not np.allclose(spacing_a, spacing_b, rtol=1e-3, atol=1e-4):
        return (
            f"voxel spacing {tuple(spacing_b.round(4).tolist())} mm (x, y, z), "
            f"the imaging {tuple(spacing_a.round(4).tolist())}"
        )
    tolerance = 0.5 * spacing_a.min()
    if np.abs(low_a - low_b).max() > tolerance or np.abs(high_a - high_b).max() > tolerance:

        def extent(low, high):
            return f"{tuple(low.round(1).tolist())}..{tuple(high.round(1).tolist())}"

        return (
            f"its voxels at {extent(low_b, high_b)} mm, the imaging's at "
            f"{extent(low_a, high_a)} (another origin or direction)"
        )
    return None


def volume_voxels(path: str | Path) -> int:
    """Voxels of a CT volume from its header alone (NIfTI) or file count x plane (DICOM):
    cheap enough to size the slicing job's memory before it runs."""
    path = Path(path)
    if path.is_dir():
        files = series_files(path)
        header = read_dicom_header(files[0])
        if "Rows" not in header or "Columns" not in header:
            raise InputDataError(files[0], "DICOM header lacks Rows, Columns")
        return len(files) * int(header.Rows) * int(header.Columns)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise InputDataError(path, f"not a readable volume header ({err})") from err
    return int(np.prod(reader.GetSize()))


def world_axes(image: sitk.Image) -> list[int]:
    """For each image axis (SimpleITK x, y, z order), the patient axis (0 x, 1 y, 2 z) it follows.

    Raises ValueError for oblique volumes where two image axes point the same way.
    """
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    # Column k of the direction matrix is the physical direction of image axis k.
    dominant = [int(np.argmax(np.abs(direction[:, k]))) for k in range(3)]
    if sorted(dominant) != [0, 1, 2]:
        raise ValueError(
            f"cannot tell the axial axis from the direction cosines {direction.tolist()}"
        )
    cosines = np.clip([abs(direction[dominant[k], k]) for k in range(3)], 0.0, 1.0)
    tilt = float(np.degrees(np.arccos(cosines.min())))
    if tilt > MAX_TILT_DEGREES:
        raise ValueError(
            f"oblique volume: an image axis is {tilt:.0f} degrees off the patient axes (more "
            f"than {MAX_TILT_DEGREES}); resample it to an axis-aligned grid first"
        )
    return dominant


def axial_axis(image: sitk.Image) -> int:
    """Index (SimpleITK x, y, z order) of the image axis that runs head–foot."""
    return world_axes(image).index(2)


def axial_stack(image: sitk.Image) -> np.ndarray:
    """Return the volume as (slices, rows, cols) with rows along patient y and cols along x.

    SimpleITK arrays are indexed in reverse axis order (image axis k is array axis 2 - k), so
    the array is permuted until its axes run along patient z, y and x. KiTS19's NIfTI layout
    (voxel axis 0 = z) and a DICOM series (axis 2 = z) then give identical slices, and the
    segmentation, read the same way, stays aligned. Voxel order along each axis is kept.
    """
    array = sitk.GetArrayFromImage(image)
    dominant = world_axes(image)
    order = [2 - dominant.index(world) for world in (2, 1, 0)]
    return np.transpose(array, order)


def window_to_uint8(hu: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Map HU linearly so that ``lower`` → 0 and ``upper`` → 255, clipping outside the window."""
    if not upper > lower:
        raise ValueError(f"CT window upper ({upper}) must exceed lower ({lower})")
    # float32 halves the memory of float64 on ~1000-slice volumes
    hu32 = np.clip(hu.astype(np.float32), np.float32(lower), np.float32(upper))
    scaled = (hu32 - np.float32(lower)) * np.float32(255.0 / (upper - lower))
    return np.rint(scaled).astype(np.uint8)


def pad_to_square(array: np.ndarray, fill: int) -> np.ndarray:
    """Pad the two in-plane axes (last two) symmetrically to a square, keeping the aspect ratio.

    Used for non-square CT planes (KiTS19 case_00160 is 512x796): padding with air keeps the
    anatomy undistorted, unlike a plain resize; the padded square is then resized to the target.
    """
    rows, cols = array.shape[-2:]
    side = max(rows, cols)
    pad_r, pad_c = side - rows, side - cols
    pad = [(0, 0)] * (array.ndim - 2) + [
        (pad_r // 2, pad_r - pad_r // 2),
        (pad_c // 2, pad_c - pad_c // 2),
    ]
    return np.pad(array, pad, mode="constant", constant_values=fill)

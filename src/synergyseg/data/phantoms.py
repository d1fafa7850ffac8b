"""Synthetic phantoms written in the *raw formats* of the real sources.

The demo must run the same ingestion code as the real datasets, so each generator writes
exactly what the real download/placement leaves on disk:

* ``isic``: ``ISIC_0000000.jpg`` images of varying sizes, ``ISIC_0000000_segmentation.png``
  masks (0/255) and a labels CSV (``isic_id,benign_malignant``, about 8 % malignant);
* ``gleason2019``: ``Train Imgs/slideNNN_coreMMM.jpg`` tissue-microarray cores and
  ``Maps{1..6}_T/slideNNN_coreMMM_classimg_nonconvex.png`` rater maps with values
  {0, 1, 3, 4, 5, 6}; raters disagree at borders, some maps are missing, some cores are benign;
* ``kits19``: ``case_NNNNN/imaging.nii.gz`` (HU, slice axis first as in KiTS19) and
  ``segmentation.nii.gz`` (0/1/2); many slices hold no kidney, one case is non-square in plane,
  and one case is stored as a DICOM series (``imaging/``) written with pydicom.

Every generator is a pure function of its seed, and the pictures are built so a segmentation
network can learn them (the target differs in colour/intensity *and* texture from its
surroundings) while shapes, sizes and artefacts vary from image to image.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import SimpleITK as sitk
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from synergyseg.atomic import atomic_directory, atomic_path, write_csv
from synergyseg.imageio import write_image
from synergyseg.seeds import regime_seed

# ---------------------------------------------------------------------------------------------
# shared drawing helpers


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-s.d. texture with features about ``scale`` pixels wide."""
    noise = rng.standard_normal(shape).astype(np.float32)
    sigma = max(scale, 0.5)
    noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return (noise - noise.mean()) / (noise.std() + 1e-6)


def irregular_blob(
    rng: np.random.Generator,
    shape: tuple[int, int],
    centre: tuple[float, float],
    radius: float,
    irregularity: float,
    aspect: float = 1.0,
) -> np.ndarray:
    """Boolean mask of a star-shaped blob whose radius wobbles with a few random harmonics."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dy, dx = rows - centre[0], (cols - centre[1]) / aspect
    theta = np.arctan2(dy, dx)
    r = np.hypot(dy, dx)
    boundary = np.ones_like(theta)
    for k in range(2, 7):
        boundary += (
            irregularity * rng.uniform(0.2, 1.0) / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        )
    return r <= radius * boundary


# ---------------------------------------------------------------------------------------------
# ISIC-like skin photographs


@dataclass(frozen=True)
class SkinSpec:
    """Sizes of the skin phantom; real ISIC images range from 1024x720 to 7000x4500."""

    n_images: int
    min_side: int
    max_side: int
    malignant_fraction: float = 0.08


def _skin_image(rng: np.random.Generator, height: int, width: int, malignant: bool):
    tone = np.array([rng.uniform(190, 235), rng.uniform(140, 180), rng.uniform(115, 150)])
    texture = smooth_noise(rng, (height, width), scale=max(height, width) / 40)
    image = tone[None, None, :] + 10 * texture[..., None]
    # lesion: darker, brown, irregular; malignant lesions are more irregular and variegated
    centre = (height * rng.uniform(0.35, 0.65), width * rng.uniform(0.35, 0.65))
    radius = min(height, width) * rng.uniform(0.15, 0.32)
    mask = irregular_blob(
        rng,
        (height, width),
        centre,
        radius,
        irregularity=0.9 if malignant else 0.35,
        aspect=rng.uniform(0.8, 1.4),
    )
    lesion_colour = np.array([rng.uniform(80, 130), rng.uniform(45, 80), rng.uniform(30, 60)])
    inner = smooth_noise(rng, (height, width), scale=radius / (3 if malignant else 6))
    lesion = lesion_colour[None, None, :] + (30 if malignant else 12) * inner[..., None]
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)[..., None]
    image = image * (1 - soft) + lesion * soft
    # artefacts: dark hairs crossing the field, and a vignette as with a dermatoscope
    for _ in range(rng.integers(0, 4)):
        p0 = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        p1 = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.line(image, p0, p1, color=(40.0, 30.0, 25.0), thickness=1)
    if rng.random() < 0.3:
        rows, cols = np.mgrid[0:height, 0:width]
        dist = np.hypot((rows - height / 2) / height, (cols - width / 2) / width)
        image *= np.clip(1.25 - dist, 0.3, 1.0)[..., None]
    image += rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_isic_phantom(out_dir: str | Path, spec: SkinSpec, seed: int) -> None:
    """Write ISIC-named JPEG images, 0/255 PNG masks and a ``labels.csv`` under ``out_dir``."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    n_malignant = max(1, round(spec.n_images * spec.malignant_fraction))
    malignant = np.zeros(spec.n_images, dtype=bool)
    malignant[rng.choice(spec.n_images, n_malignant, replace=False)] = True
    rows = []
    for index in range(spec.n_images):
        isic_id = f"ISIC_{index:07d}"
        height = int(rng.integers(spec.min_side, spec.max_side + 1))
        width = int(rng.integers(height, round(height * 1.5) + 1))
        image, mask = _skin_image(rng, height, width, bool(malignant[index]))
        write_image(image, out_dir / "images" / f"{isic_id}.jpg", [cv2.IMWRITE_JPEG_QUALITY, 92])
        write_image(mask.astype(np.uint8) * 255, out_dir / "masks" / f"{isic_id}_segmentation.png")
        rows.append((isic_id, "malignant" if malignant[index] else "benign"))
    write_csv(pd.DataFrame(rows, columns=["isic_id", "benign_malignant"]), out_dir / "labels.csv")


# ---------------------------------------------------------------------------------------------
# Gleason2019-like prostate tissue-microarray cores


@dataclass(frozen=True)
class ProstateSpec:
    """Sizes of the prostate phantom; real Gleason2019 cores are 5120x5120 RGB."""

    n_cores: int
    side: int
    tumour_free_fraction: float = 0.4
    n_raters: int = 6
    min_raters: int = 2


def _prostate_core(rng: np.random.Generator, side: int, tumour_free: bool):
    """Return the RGB core and its 'true' graded label map (0 bg, 1 benign, 3–5 tumour)."""
    centre = (side / 2 + rng.normal(0, side * 0.03), side / 2 + rng.normal(0, side * 0.03))
    tissue = irregular_blob(rng, (side, side), centre, side * rng.uniform(0.36, 0.44), 0.15)
    labels = tissue.astype(np.uint8)
    if not tumour_free:
        for _ in range(rng.integers(1, 4)):
            spot = (centre[0] + rng.normal(0, side * 0.12), centre[1] + rng.normal(0, side * 0.12))
            region = irregular_blob(rng, (side, side), spot, side * rng.uniform(0.08, 0.18), 0.6)
            labels[region & tissue] = rng.choice([3, 4, 5], p=[0.5, 0.35, 0.15])
    # H&E look: white glass, pink stroma with pale glands, tumour crowded with purple nuclei
    image = np.full((side, side, 3), 240.0)
    stroma = (
        np.array([225.0, 150.0, 185.0]) + 12 * smooth_noise(rng, (side, side), side / 60)[..., None]
    )
    image[tissue] = stroma[tissue]
    glands = (smooth_noise(rng, (side, side), side / 40) > 1.2) & (labels == 1)
    image[glands] = [245.0, 225.0, 235.0]
    tumour = labels >= 3
    nuclei = smooth_noise(rng, (side, side), 1.0)
    purple = np.array([120.0, 60.0, 150.0]) + 35 * nuclei[..., None]
    image[tumour] = purple[tumour]
    image += rng.normal(0, 4, image.shape)
    image = cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (3, 3), 0)
    return image, labels


def _rater_map(rng: np.random.Generator, truth: np.ndarray) -> np.ndarray:
    """One pathologist's map: borders shifted by a few pixels, grades sometimes off by one."""
    rater = truth.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    steps = int(rng.integers(0, 3))
    for grade in (3, 4, 5):
        region = (truth == grade).astype(np.uint8)
        if not region.any():
            continue
        moved = (
            cv2.dilate(region, kernel, iterations=steps)
            if rng.random() < 0.5
            else cv2.erode(region, kernel, iterations=steps)
        )
        rater[(region == 1) & (moved == 0)] = 1
        new_grade = int(np.clip(grade + rng.choice([-1, 0, 0, 1]), 3, 5))
        rater[(moved == 1) & (truth > 0)] = new_grade
    if rng.random() < 0.3:  # the challenge's annotation mistake: value 6 on benign tissue
        benign = np.argwhere(rater == 1)
        if len(benign):
            r, c = benign[rng.integers(len(benign))]
            rater[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2][
                truth[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] == 1
            ] = 6
    return rater


def write_gleason_phantom(out_dir: str | Path, spec: ProstateSpec, seed: int) -> None:
    """Write ``Train Imgs/*.jpg`` cores and ``Maps{k}_T/*_classimg_nonconvex.png`` rater maps."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    n_free = round(spec.n_cores * spec.tumour_free_fraction)
    free = np.zeros(spec.n_cores, dtype=bool)
    free[rng.choice(spec.n_cores, n_free, replace=False)] = True
    for index in range(spec.n_cores):
        name = f"slide{index // 4 + 1:03d}_core{index % 4 + 1:03d}"
        image, truth = _prostate_core(rng, spec.side, bool(free[index]))
        write_image(image, out_dir / "Train Imgs" / f"{name}.jpg", [cv2.IMWRITE_JPEG_QUALITY, 92])
        n_raters = int(rng.integers(spec.min_raters, spec.n_raters + 1))
        for rater in sorted(rng.choice(spec.n_raters, n_raters, replace=False) + 1):
            write_image(
                _rater_map(rng, truth),
                out_dir / f"Maps{rater}_T" / f"{name}_classimg_nonconvex.png",
            )


# ---------------------------------------------------------------------------------------------
# KiTS19-like abdominal CT


@dataclass(frozen=True)
class KidneySpec:
    """Sizes of the kidney phantom; real KiTS19 volumes are ~30–1000 slices of 512x512."""

    n_cases: int
    n_slices: int
    side: int
    non_square_case: int | None = 1
    dicom_case: int | None = 2


def kidney_volume(rng: np.random.Generator, n_slices: int, rows: int, cols: int):
    """HU volume and 0/1/2 segmentation indexed (slice, row, col)."""
    z, y, x = np.mgrid[0:n_slices, 0:rows, 0:cols].astype(np.float32)
    hu = np.full((n_slices, rows, cols), -1000.0, dtype=np.float32)
    body = ((y - rows / 2) / (rows * 0.42)) ** 2 + ((x - cols / 2) / (cols * 0.45)) ** 2 <= 1
    hu[body] = -90.0  # fat
    organs = body & (
        (((y - rows * 0.45) / (rows * 0.3)) ** 2 + ((x - cols / 2) / (cols * 0.35)) ** 2) <= 1
    )
    hu[organs] = 45.0  # soft tissue
    spine = ((y - rows * 0.72) ** 2 + (x - cols / 2) ** 2) <= (min(rows, cols) * 0.07) ** 2
    hu[spine] = 650.0
    seg = np.zeros(hu.shape, dtype=np.uint8)
    # kidneys occupy the middle of the volume only, so many slices are kidney-free
    z_mid = n_slices * rng.uniform(0.4, 0.6)
    z_half = n_slices * rng.uniform(0.15, 0.25)
    for side_sign in (-1, 1):
        cy = rows * rng.uniform(0.6, 0.68)
        cx = cols / 2 + side_sign * cols * rng.uniform(0.2, 0.25)
        ry, rx = rows * rng.uniform(0.11, 0.14), cols * rng.uniform(0.07, 0.09)
        kidney = ((z - z_mid) / z_half) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
        seg[kidney] = 1
        hu[kidney] = 210.0  # contrast-enhanced parenchyma
        if side_sign == 1 and rng.random() < 0.8:
            tz, ty, tx = z_mid + rng.normal(0, z_half / 3), cy - ry * 0.6, cx + rx * 0.5
            r = min(ry, rx) * rng.uniform(0.6, 1.0)
            tumour = ((z - tz) / (r * n_slices / rows * 1.5)) ** 2 + ((y - ty) / r) ** 2 + (
                (x - tx) / r
            ) ** 2 <= 1
            seg[tumour & body] = 2
            hu[tumour & body] = 120.0  # enhances less than the kidney, more than muscle
    hu += 25.0 * np.stack([smooth_noise(rng, (rows, cols), 1.5) for _ in range(n_slices)])
    hu[~np.broadcast_to(body, hu.shape)] = -1000.0 + rng.normal(
        0, 5, hu[~np.broadcast_to(body, hu.shape)].shape
    )
    return np.rint(hu).astype(np.int16), seg


def _kits_nifti_image(array: np.ndarray, spacing: tuple[float, float, float]) -> sitk.Image:
    """Wrap a (slice, row, col) array the way KiTS19 stores it: voxel axis 0 is head–foot.

    SimpleITK's array order is the reverse of the image axes, so the array is transposed to
    (col, row, slice) to give image axes (slice, row, col).
    """
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing((spacing[0], spacing[1], spacing[2]))
    # image axis 0 → patient z, axis 1 → y, axis 2 → x (columns of the direction matrix)
    image.SetDirection((0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0))
    return image


def write_nifti(image: sitk.Image, path: str | Path) -> None:
    """Write a NIfTI atomically (the temporary name keeps the .nii.gz suffix SimpleITK needs)."""
    with atomic_path(path, suffix=".nii.gz") as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def write_dicom_series(
    hu: np.ndarray, folder: str | Path, spacing: tuple[float, float, float], seed: int
) -> None:
    """Write a (slice, row, col) HU volume as a CT DICOM series (slope 1, intercept -1024)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study, series, frame = (
        generate_uid(entropy_srcs=[str(seed), tag]) for tag in ("study", "series", "frame")
    )
    stored = np.clip(hu.astype(np.int32) + 1024, 0, 4095).astype(np.uint16)
    date = datetime.date(2019, 1, 1).strftime("%Y%m%d")
    for index, plane in enumerate(stored):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(seed), "sop", str(index)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientID, ds.PatientName = (
            "CT",
            f"PHANTOM{int(rng.integers(1e6)):06d}",
            "Phantom^Kidney",
        )
        ds.StudyDate = ds.SeriesDate = date
        ds.SeriesNumber, ds.InstanceNumber = 1, index + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(index * spacing[0])]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[2])]
        ds.SliceThickness = float(spacing[0])
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
        ds.PixelData = np.ascontiguousarray(plane).tobytes()
        with atomic_path(folder / f"IM{index + 1:05d}.dcm") as tmp:
            ds.save_as(tmp, enforce_file_format=True)


def write_kits_phantom(out_dir: str | Path, spec: KidneySpec, seed: int) -> None:
    """Write KiTS19-style ``case_NNNNN`` folders (one non-square, one as a DICOM series)."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    spacing = (3.0, 0.8, 0.8)  # slice thickness, row and column spacing in mm
    for case in range(spec.n_cases):
        cols = round(spec.side * 1.5) if case == spec.non_square_case else spec.side
        hu, seg = kidney_volume(rng, spec.n_slices, spec.side, cols)
        folder = out_dir / f"case_{case:05d}"
        if case == spec.dicom_case:
            write_dicom_series(hu, folder / "imaging", spacing, seed=seed * 1000 + case)
        else:
            write_nifti(_kits_nifti_image(hu, spacing), folder / "imaging.nii.gz")
        write_nifti(_kits_nifti_image(seg, spacing), folder / "segmentation.nii.gz")


# ---------------------------------------------------------------------------------------------
# entry point used by the workflow

WRITERS = {
    "isic": (write_isic_phantom, SkinSpec, {"n": "n_images"}),
    "gleason2019": (write_gleason_phantom, ProstateSpec, {"n": "n_cores"}),
    "kits19": (write_kits_phantom, KidneySpec, {"n": "n_cases"}),
}


def dataset_seed(root_seed: int, dataset: str) -> int:
    """Per-dataset seed, stable across runs and machines."""
    return regime_seed(root_seed, "phantom", dataset)


def write_phantom(raw_format: str, settings: dict, seed: int, out_dir: str | Path) -> None:
    """Write the phantom for ``raw_format`` from its config section, as one atomic folder."""
    if raw_format not in WRITERS:
        raise ValueError(f"no phantom for format {raw_format!r}; choose one of {sorted(WRITERS)}")
    writer, spec_type, renames = WRITERS[raw_format]
    fields = spec_type.__dataclass_fields__
    kwargs = {renames.get(k, k): v for k, v in settings.items() if renames.get(k, k) in fields}
    with atomic_directory(out_dir) as tmp:
        writer(tmp, spec_type(**kwargs), seed)

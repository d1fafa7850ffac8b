"""Find the cases of each raw layout on disk, and say exactly what is missing when they are not.

Each function returns plain records; the slicing module decides what to do with them. A raw
folder is checked completely before any slice is written, so a bad dataset fails fast and
leaves no half-made outputs behind.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synergyseg.errors import InputDataError

log = logging.getLogger(__name__)

ISIC_ID = re.compile(r"^(ISIC_\d{7})$")
GLEASON_MAP_DIR = re.compile(r"^Maps(\d)_T$")
GLEASON_LAYOUT = """Gleason2019 is a manual download (the challenge needs sign-in). Place it as:
  {root}/Train Imgs/slide001_core003.jpg ...
  {root}/Maps1_T/slide001_core003_classimg_nonconvex.png ... (Maps1_T ... Maps6_T, as available)"""


@dataclass(frozen=True)
class ImageRecord:
    """One 2-D image with its mask path(s), case (patient/slide) and clinical label."""

    slice_id: str
    image: Path
    masks: tuple[Path, ...]
    case: str
    label: str = "unknown"


@dataclass(frozen=True)
class VolumeRecord:
    """One CT case: imaging (NIfTI file or DICOM folder) and its segmentation."""

    case: str
    imaging: Path
    segmentation: Path


def _unique_by_id(pairs) -> dict[str, Path]:
    """id → file, refusing an id found twice (e.g. in two subfolders) instead of keeping one."""
    found: dict[str, Path] = {}
    for key, path in pairs:
        if key in found:
            raise InputDataError(path, f"{key} is also at {found[key]}; keep one copy")
        found[key] = path
    return found


def isic_records(root: str | Path, labels_csv: str | Path | None = None) -> list[ImageRecord]:
    """ISIC 2018 Task 1 layout: ``ISIC_xxxxxxx.jpg`` and ``ISIC_xxxxxxx_segmentation.png`` anywhere
    below ``root``; benign/malignant from ``labels_csv`` (``isic_id,benign_malignant``) if given."""
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(root, "ISIC folder is missing")
    images = _unique_by_id(
        (p.stem, p) for p in sorted(root.rglob("ISIC_*.jpg")) if ISIC_ID.match(p.stem)
    )
    masks = _unique_by_id(
        (p.stem.removesuffix("_segmentation"), p)
        for p in sorted(root.rglob("ISIC_*_segmentation.png"))
    )
    if not images:
        raise InputDataError(root, "no ISIC_xxxxxxx.jpg images found")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise InputDataError(
            images[missing[0]],
            f"no {missing[0]}_segmentation.png mask ({len(missing)} images lack one)",
        )
    labels: dict[str, str] = {}
    if labels_csv is not None:
        if not Path(labels_csv).is_file():
            raise InputDataError(labels_csv, "labels CSV is missing (the dataset's labels_csv)")
        table = pd.read_csv(labels_csv, dtype=str)
        for column in ("isic_id", "benign_malignant"):
            if column not in table.columns:
                raise InputDataError(labels_csv, f"labels CSV lacks the column {column!r}")
        labels = dict(
            zip(table["isic_id"], table["benign_malignant"].fillna("unknown"), strict=True)
        )
        unlabelled = len(set(images) - set(labels))
        if unlabelled:
            log.warning(
                "%s: no row for %d of %d images; they are labelled 'unknown'",
                labels_csv,
                unlabelled,
                len(images),
            )
    return [
        ImageRecord(
            isic_id,
            images[isic_id],
            (masks[isic_id],),
            case=isic_id,
            label=labels.get(isic_id, "unknown"),
        )
        for isic_id in sorted(images)
    ]


def gleason_records(root: str | Path) -> list[ImageRecord]:
    """Gleason2019 layout: cores in ``Train Imgs/`` and rater maps in ``Maps{k}_T/``.

    A core without any rater map cannot be given a ground truth and is an error; a core with
    fewer than six maps is normal (not every pathologist annotated every core).
    """
    root = Path(root)
    image_dir = root / "Train Imgs"
    if not image_dir.is_dir():
        raise InputDataError(image_dir, "folder is missing.\n" + GLEASON_LAYOUT.format(root=root))
    map_dirs = sorted(
        (int(m.group(1)), p)
        for p in root.iterdir()
        if p.is_dir() and (m := GLEASON_MAP_DIR.match(p.name))
    )
    if not map_dirs:
        raise InputDataError(
            root, "no Maps1_T ... Maps6_T folders.\n" + GLEASON_LAYOUT.format(root=root)
        )
    records = []
    for image in sorted(image_dir.glob("*.jpg")):
        maps = tuple(
            d / f"{image.stem}_classimg_nonconvex.png"
            for _, d in map_dirs
            if (d / f"{image.stem}_classimg_nonconvex.png").is_file()
        )
        if not maps:
            raise InputDataError(image, "no rater map in any Maps*_T folder for this core")
        slide = image.stem.split("_")[0]
        records.append(ImageRecord(image.stem, image, maps, case=slide))
    if not records:
        raise InputDataError(image_dir, "no .jpg cores found.\n" + GLEASON_LAYOUT.format(root=root))
    return records


def kits_records(root: str | Path, cases: list[str] | None = None) -> list[VolumeRecord]:
    """KiTS19 layout: ``case_NNNNN/imaging.nii.gz`` (or an ``imaging/`` DICOM folder) and
    ``case_NNNNN/segmentation.nii.gz``. ``cases`` (if given) must all be present."""
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(root, "KiTS19 folder is missing")
    folders = sorted(p for p in root.glob("case_*") if p.is_dir())
    if cases is not None:
        present = {p.name for p in folders}
        absent = [c for c in cases if c not in present]
        if absent:
            raise InputDataError(
                root / absent[0], f"case folder is missing ({len(absent)} cases absent)"
            )
        folders = [root / c for c in cases]
    if not folders:
        raise InputDataError(root, "no case_NNNNN folders found")
    records = []
    for folder in folders:
        nifti, dicom = folder / "imaging.nii.gz", folder / "imaging"
        if nifti.is_file():
            imaging = nifti
        elif dicom.is_dir():
            imaging = dicom
        else:
            raise InputDataError(
                folder, "case has neither imaging.nii.gz nor an imaging/ DICOM folder"
            )
        segmentation = folder / "segmentation.nii.gz"
        if not segmentation.is_file():
            raise InputDataError(segmentation, "segmentation is missing for this case")
        records.append(VolumeRecord(folder.name, imaging, segmentation))
    return records


CUSTOM_COLUMNS = ("image", "mask", "case", "label")


# What pandas' CSV reader (and R's) turns into a missing value: a case or label written like
# this would come back as NaN in every later table.
READS_AS_MISSING = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)


def custom_records(csv_path: str | Path) -> list[ImageRecord]:
    """Any binary-segmentation dataset: a CSV with ``image, mask, case, label`` columns.

    Relative paths are taken relative to the CSV's folder, so a dataset folder can be moved.
    Values are read as text with surrounding spaces removed (``"benign "`` is ``benign``). An
    image's slice id is its file name without extension, so names must be unique.
    """
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        raise InputDataError(
            csv_path, f"is a folder; format custom needs a CSV with {', '.join(CUSTOM_COLUMNS)}"
        )
    if not csv_path.is_file():
        raise InputDataError(csv_path, "custom dataset CSV is missing")
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    table.columns = [str(c).strip() for c in table.columns]
    absent = [c for c in CUSTOM_COLUMNS if c not in table.columns]
    if absent:
        separator = (
            " (it must be comma-separated)"
            if len(table.columns) == 1 and ";" in table.columns[0]
            else ""
        )
        raise InputDataError(
            csv_path,
            f"CSV lacks the column(s) {', '.join(absent)}; needs {', '.join(CUSTOM_COLUMNS)}"
            + separator,
        )
    records, missing, lines = [], [], {}
    for line, row in enumerate(table.itertuples(index=False), start=2):
        values = {column: getattr(row, column).strip() for column in CUSTOM_COLUMNS}
        for column in ("image", "mask"):
            if not values[column]:
                raise InputDataError(csv_path, f"line {line}: no {column} path")
        for column in ("case", "label"):
            if values[column] in READS_AS_MISSING:
                raise InputDataError(
                    csv_path,
                    f"line {line}: {column} {values[column]!r} is empty or reads as missing in "
                    f"CSV tools (pandas, R); give every image a {column} such as 'unknown'",
                )
        image, mask = csv_path.parent / values["image"], csv_path.parent / values["mask"]
        missing += [f"line {line}: {p}" for p in (image, mask) if not p.is_file()]
        slice_id = Path(values["image"]).stem
        lines.setdefault(slice_id, []).append(f"line {line}: {values['image']}")
        records.append(
            ImageRecord(slice_id, image, (mask,), case=values["case"], label=values["label"])
        )
    if missing:
        raise InputDataError(
            csv_path, f"{len(missing)} listed file(s) missing: " + "; ".join(missing[:5])
        )
    clashes = {name: where for name, where in lines.items() if len(where) > 1}
    if clashes:
        name, where = next(iter(clashes.items()))
        raise InputDataError(
            csv_path,
            f"{len(clashes)} image file name(s) (without extension) used twice, e.g. {name!r} "
            f"({'; '.join(where)}); the name is the image's id in every table, so rename one",
        )
    return records

"""Phantoms are written in the real sources' raw formats, vary, and are reproducible."""

from __future__ import annotations

import filecmp

import cv2
import numpy as np
import pandas as pd
import pydicom
import SimpleITK as sitk

from synergyseg.data import phantoms


def test_isic_phantom_files_read_back(phantom_root):
    skin = phantom_root / "skin"
    images = sorted((skin / "images").glob("ISIC_*.jpg"))
    masks = sorted((skin / "masks").glob("ISIC_*_segmentation.png"))
    assert len(images) == len(masks) == 25
    sizes = set()
    for image, mask in zip(images, masks, strict=True):
        assert mask.name == image.stem + "_segmentation.png"
        rgb, gray = cv2.imread(str(image)), cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
        assert rgb.ndim == 3 and gray.ndim == 2 and rgb.shape[:2] == gray.shape
        assert set(np.unique(gray)) == {0, 255}
        sizes.add(rgb.shape[:2])
    assert len(sizes) > 5  # varying sizes, as in ISIC
    labels = pd.read_csv(skin / "labels.csv")
    assert list(labels.columns) == ["isic_id", "benign_malignant"]
    assert (labels["benign_malignant"] == "malignant").sum() == 2  # round(25 * 0.08)


def test_gleason_phantom_layout_values_and_missing_maps(phantom_root):
    prostate = phantom_root / "prostate"
    cores = sorted((prostate / "Train Imgs").glob("slide*_core*.jpg"))
    assert len(cores) == 12
    counts, values, benign_only = [], set(), 0
    for core in cores:
        maps = [
            prostate / f"Maps{k}_T" / f"{core.stem}_classimg_nonconvex.png" for k in range(1, 7)
        ]
        present = [m for m in maps if m.is_file()]
        counts.append(len(present))
        core_values = set()
        for m in present:
            core_values |= set(np.unique(cv2.imread(str(m), cv2.IMREAD_UNCHANGED)).tolist())
        values |= core_values
        benign_only += not (core_values & {3, 4, 5})
    assert values <= {0, 1, 3, 4, 5, 6} and {0, 1, 3} <= values
    assert min(counts) >= 2 and min(counts) < 6  # not every rater annotated every core
    assert benign_only >= 3  # tumour-free cores exist


def test_kits_phantom_layout(phantom_root):
    kidney = phantom_root / "kidney"
    cases = sorted(p.name for p in kidney.iterdir())
    assert cases == ["case_00000", "case_00001", "case_00002", "case_00003"]
    seg = sitk.ReadImage(str(kidney / "case_00000" / "segmentation.nii.gz"))
    assert seg.GetSize()[0] == 16  # slice axis first, as in KiTS19
    labels = sitk.GetArrayFromImage(seg)
    assert set(np.unique(labels)) == {0, 1, 2}
    per_slice = labels.transpose(2, 1, 0).reshape(16, -1).max(axis=1)
    assert (per_slice == 0).sum() >= 4  # many slices without kidney
    non_square = sitk.ReadImage(str(kidney / "case_00001" / "imaging.nii.gz"))
    assert non_square.GetSize()[1] != non_square.GetSize()[2]
    dicoms = sorted((kidney / "case_00002" / "imaging").glob("*.dcm"))
    assert len(dicoms) == 16 and not (kidney / "case_00002" / "imaging.nii.gz").exists()
    assert pydicom.dcmread(dicoms[0]).Modality == "CT"


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    spec = {"n": 6, "min_side": 40, "max_side": 60}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        phantoms.write_phantom("isic", spec, seed, tmp_path / name)
    same = filecmp.dircmp(tmp_path / "a" / "masks", tmp_path / "b" / "masks")
    assert not same.diff_files and not same.left_only
    assert filecmp.cmp(tmp_path / "a" / "labels.csv", tmp_path / "b" / "labels.csv", shallow=False)
    a = cv2.imread(str(tmp_path / "a" / "masks" / "ISIC_0000000_segmentation.png"))
    c = cv2.imread(str(tmp_path / "c" / "masks" / "ISIC_0000000_segmentation.png"))
    assert a.shape != c.shape or not np.array_equal(a, c)

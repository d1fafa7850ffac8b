"""Slicing: sizes, manifest contents, and named errors for bad input."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from synergyseg.data import slicing
from synergyseg.data.slicing import SliceSettings
from synergyseg.errors import InputDataError
from synergyseg.store import SliceStore


def run(fmt, raw, tmp_path, settings, labels=None, png=True):
    records = slicing.find_records(fmt, raw, labels)
    return slicing.make_slices(
        fmt,
        records,
        settings,
        store_dir=tmp_path,
        manifest=tmp_path / "manifest.csv",
        png_dir=tmp_path / "png" if png else None,
        threads=2,
    )


def test_isic_slices_are_resized_and_labelled(phantom_root, tmp_path):
    skin = phantom_root / "skin"
    manifest = run("isic", skin, tmp_path, SliceSettings(96, 64), skin / "labels.csv")
    assert list(manifest.columns) == slicing.MANIFEST_COLUMNS
    assert len(manifest) == 25 and manifest["slice_id"].is_monotonic_increasing
    assert set(manifest["label"]) == {"benign", "malignant"}
    store = SliceStore(tmp_path)
    assert len(store) == 25 and sorted(manifest["row"]) == list(range(25))
    for row in manifest.itertuples():
        image, mask = cv2.imread(row.image), cv2.imread(row.mask, cv2.IMREAD_UNCHANGED)
        assert image.shape == (64, 96, 3) and mask.shape == (64, 96)
        assert set(np.unique(mask)) <= {0, 255}
        assert row.foreground_pixels == int((mask == 255).sum())
        # the store row holds the same pixels as the PNG copies (RGB; OpenCV reads BGR)
        assert np.array_equal(store.images([row.row])[0], image[..., ::-1])
        assert np.array_equal(store.masks([row.row])[0], mask // 255)


def test_gleason_slices_have_consensus_labels(phantom_root, tmp_path):
    manifest = run("gleason2019", phantom_root / "prostate", tmp_path, SliceSettings(64, 64))
    assert set(manifest["label"]) == {"tumour", "no tumour"}
    assert (manifest.loc[manifest["label"] == "no tumour", "foreground_pixels"] == 0).all()
    assert (manifest.loc[manifest["label"] == "tumour", "foreground_pixels"] > 0).all()
    assert manifest["case"].str.startswith("slide").all()


def test_a_gleason_tumour_lost_in_the_resize_leaves_no_tumour_label(tmp_path):
    """A 2-pixel tumour in a 256-pixel core does not survive the resize to 32 pixels: the
    core's label must follow the mask it ends with, as a CT slice's does."""
    from synergyseg.data.slicing import slice_gleason
    from synergyseg.data.sources import ImageRecord

    cv2.imwrite(str(tmp_path / "core.jpg"), np.full((256, 256, 3), 180, np.uint8))
    rater = np.zeros((256, 256), np.uint8)
    rater[101:103, 101] = 4
    cv2.imwrite(str(tmp_path / "map.png"), rater)
    record = ImageRecord("core", tmp_path / "core.jpg", (tmp_path / "map.png",), "core", "")
    (core,) = slice_gleason(record, SliceSettings(32, 32))
    assert core.mask.sum() == 0 and core.label == "no tumour"


def test_kits_slices_cover_every_axial_plane(phantom_root, tmp_path):
    manifest = run("kits19", phantom_root / "kidney", tmp_path, SliceSettings(32, 32, (-512, 512)))
    assert len(manifest) == 4 * 16
    assert set(manifest["label"]) == {"kidney", "no kidney"}
    assert manifest.groupby("case").size().tolist() == [16] * 4
    # the non-square case was padded, then resized to the target square
    image = cv2.imread(
        manifest.loc[manifest["case"] == "case_00001", "image"].iloc[0], cv2.IMREAD_UNCHANGED
    )
    assert image.shape == (32, 32)
    store = SliceStore(tmp_path)
    assert (store.height, store.width, store.channels) == (32, 32, 1)
    assert (store.masks(manifest["row"]).sum(axis=(1, 2)) == manifest["foreground_pixels"]).all()


def test_without_png_copies_the_store_alone_holds_the_slices(phantom_root, tmp_path):
    manifest = run("kits19", phantom_root / "kidney", tmp_path, SliceSettings(32, 32), png=False)
    assert not (tmp_path / "png").exists()
    assert manifest["image"].isna().all() or (manifest["image"] == "").all()
    assert len(SliceStore(tmp_path)) == len(manifest) == 64


def test_reslicing_is_byte_identical(phantom_root, tmp_path):
    run("gleason2019", phantom_root / "prostate", tmp_path / "a", SliceSettings(64, 64))
    run("gleason2019", phantom_root / "prostate", tmp_path / "b", SliceSettings(64, 64))
    a = (tmp_path / "a" / "manifest.csv").read_text().replace("/a/", "/")
    b = (tmp_path / "b" / "manifest.csv").read_text().replace("/b/", "/")
    assert a == b
    for name in ("images.npy", "masks.npy"):  # threads finish in any order; the store does not
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def copy_tree(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_mask_of_other_size_is_named(phantom_root, tmp_path):
    skin = copy_tree(phantom_root / "skin", tmp_path / "skin")
    victim = skin / "masks" / "ISIC_0000003_segmentation.png"
    mask = cv2.imread(str(victim), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(victim), mask[:-5])
    with pytest.raises(
        InputDataError, match="ISIC_0000003_segmentation.png: mask is .* but its image"
    ):
        run("isic", skin, tmp_path / "out", SliceSettings(96, 64))
    assert not (tmp_path / "out" / "manifest.csv").exists()
    assert not (tmp_path / "out" / "png").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # no store, no leftovers


def test_non_binary_masks_are_all_named_in_one_run(phantom_root, tmp_path, caplog):
    """Every bad file of a dataset in one run, not one per run (at paper size each run slices
    thousands of images before it reaches the next bad one)."""
    skin = copy_tree(phantom_root / "skin", tmp_path / "skin")
    for number, value in (("0000004", 128), ("0000011", 7)):
        victim = skin / "masks" / f"ISIC_{number}_segmentation.png"
        mask = cv2.imread(str(victim), cv2.IMREAD_UNCHANGED)
        mask[0, 0] = value
        cv2.imwrite(str(victim), mask)
    with pytest.raises(
        InputDataError,
        match=r"(?s)ISIC_0000004_segmentation.png: mask is not binary.*128.*"
        r"and 1 more bad input\(s\), all in the log: .*ISIC_0000011_segmentation.png.*7",
    ):
        run("isic", skin, tmp_path / "out", SliceSettings(96, 64), png=False)
    assert caplog.text.count("mask is not binary") == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # nothing written


def test_missing_mask_is_named(phantom_root, tmp_path):
    skin = copy_tree(phantom_root / "skin", tmp_path / "skin")
    (skin / "masks" / "ISIC_0000005_segmentation.png").unlink()
    with pytest.raises(InputDataError, match="no ISIC_0000005_segmentation.png"):
        slicing.find_records("isic", skin)


def test_case_without_segmentation_is_named(phantom_root, tmp_path):
    kidney = copy_tree(phantom_root / "kidney", tmp_path / "kidney")
    (kidney / "case_00003" / "segmentation.nii.gz").unlink()
    with pytest.raises(
        InputDataError, match="case_00003/segmentation.nii.gz: segmentation is missing"
    ):
        slicing.find_records("kits19", kidney)


def test_corrupt_nifti_in_dataset_is_named_and_nothing_is_written(phantom_root, tmp_path):
    kidney = copy_tree(phantom_root / "kidney", tmp_path / "kidney")
    (kidney / "case_00000" / "imaging.nii.gz").write_bytes(b"not a volume")
    with pytest.raises(InputDataError, match="case_00000/imaging.nii.gz"):
        run("kits19", kidney, tmp_path / "out", SliceSettings(32, 32))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_segmentation_of_other_shape_is_named(phantom_root, tmp_path):
    kidney = copy_tree(phantom_root / "kidney", tmp_path / "kidney")
    shutil.copy(
        kidney / "case_00001" / "segmentation.nii.gz", kidney / "case_00000" / "segmentation.nii.gz"
    )
    with pytest.raises(
        InputDataError, match="case_00000/segmentation.nii.gz: segmentation has shape"
    ):
        run("kits19", kidney, tmp_path / "out", SliceSettings(32, 32))


def test_gleason_missing_layout_explains_what_to_create(tmp_path):
    with pytest.raises(InputDataError, match="(?s)Train Imgs: folder is missing.*Maps1_T"):
        slicing.find_records("gleason2019", tmp_path)


def test_gleason_map_with_bad_values_is_named(phantom_root, tmp_path):
    prostate = copy_tree(phantom_root / "prostate", tmp_path / "prostate")
    victim = next((prostate / "Maps1_T").glob("*.png"))
    label_map = cv2.imread(str(victim), cv2.IMREAD_UNCHANGED)
    label_map[0, 0] = 2
    cv2.imwrite(str(victim), label_map)
    with pytest.raises(InputDataError, match=f"{victim.name}: rater map has values \\[2\\]"):
        run("gleason2019", prostate, tmp_path / "out", SliceSettings(64, 64))


def test_custom_csv_dataset(tmp_path, rng):
    folder = tmp_path / "mine"
    (folder / "img").mkdir(parents=True)
    rows = []
    for i in range(4):
        image = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
        mask = np.zeros((40, 50), np.uint8)
        mask[10:20, 10 + i : 30] = 1
        cv2.imwrite(str(folder / "img" / f"p{i}.png"), image)
        cv2.imwrite(str(folder / "img" / f"p{i}_m.png"), mask)
        rows.append((f"img/p{i}.png", f"img/p{i}_m.png", f"patient{i // 2}", "polyp"))
    pd.DataFrame(rows, columns=["image", "mask", "case", "label"]).to_csv(
        folder / "data.csv", index=False
    )
    manifest = run(
        "custom", folder / "data.csv", tmp_path, SliceSettings(64, 32, mask_foreground=1)
    )
    assert manifest["case"].tolist() == ["patient0", "patient0", "patient1", "patient1"]
    assert (manifest["foreground_pixels"] > 0).all()


def test_custom_csv_missing_column_is_named(tmp_path):
    (tmp_path / "data.csv").write_text("image,mask\na.png,b.png\n")
    with pytest.raises(InputDataError, match="data.csv: CSV lacks the column\\(s\\) case, label"):
        slicing.find_records("custom", tmp_path / "data.csv")

"""Bad inputs end in an error that names the file (or config key) and the problem.

CT volumes and DICOM series are in test_ct.py, rater maps and mask/image size checks in
test_slicing.py, the config schema in test_config.py; this file holds the rest of the matrix
listed in docs/failures.md: 2-D image files, empty datasets, duplicated ids, split manifests,
split counts, checkpoints and resume files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from synergyseg.checkpoints import load_checkpoint
from synergyseg.config import schema_problem
from synergyseg.data import slicing, sources
from synergyseg.errors import InputDataError
from synergyseg.imageio import read_binary_mask, read_rgb
from synergyseg.manifests import read_split
from synergyseg.model import ModelSpec, VGGUNet
from synergyseg.splits import SplitSettings, check_split_count, random_split

ROOT = Path(__file__).resolve().parents[1]

# --- 2-D image files ---------------------------------------------------------------------------


def test_an_image_that_does_not_decode_is_named(tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png at all" * 8)
    with pytest.raises(InputDataError, match="photo.png: not a readable image"):
        read_rgb(bad)


def test_a_truncated_jpeg_is_refused_not_read_half_gray(tmp_path, rng):
    photo = tmp_path / "ISIC_0000001.jpg"
    cv2.imwrite(str(photo), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert read_rgb(photo).shape == (64, 64, 3)  # the whole file reads
    photo.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    with pytest.raises(InputDataError, match="ISIC_0000001.jpg: JPEG is truncated"):
        read_rgb(photo)


def test_an_empty_mask_file_is_named(tmp_path):
    empty = tmp_path / "mask.png"
    empty.write_bytes(b"")
    with pytest.raises(InputDataError, match=r"mask.png: mask file is empty \(0 bytes\)"):
        read_binary_mask(empty)


def test_16_bit_masks_are_refused_and_16_bit_images_converted(tmp_path):
    mask = np.zeros((8, 8), np.uint16)
    mask[2:5, 2:5] = 65535
    cv2.imwrite(str(tmp_path / "mask16.png"), mask)
    with pytest.raises(InputDataError, match="mask16.png: mask is a 16-bit image; save masks"):
        read_binary_mask(tmp_path / "mask16.png")
    image = np.full((8, 8, 3), 256 * 200, np.uint16)  # 16-bit photo: scaled to 8 bits
    cv2.imwrite(str(tmp_path / "photo16.png"), image)
    converted = read_rgb(tmp_path / "photo16.png")
    assert converted.dtype == np.uint8 and (converted == 200).all()


def test_palette_masks_gray_palettes_read_coloured_palettes_refused(tmp_path):
    indices = np.zeros((8, 8), np.uint8)
    indices[2:6, 2:6] = 1
    gray = Image.fromarray(indices, mode="P")
    gray.putpalette([0, 0, 0, 255, 255, 255])
    gray.save(tmp_path / "gray.png")
    expected = indices.astype(bool)
    assert (read_binary_mask(tmp_path / "gray.png") == expected).all()
    coloured = Image.fromarray(indices, mode="P")
    coloured.putpalette([0, 0, 0, 255, 0, 0])  # VOC-style: foreground in red
    coloured.save(tmp_path / "coloured.png")
    with pytest.raises(InputDataError, match="coloured.png: mask is a palette PNG with colours"):
        read_binary_mask(tmp_path / "coloured.png")


# --- datasets ----------------------------------------------------------------------------------


def test_a_gleason_core_without_any_rater_map_is_named(tmp_path, rng):
    (tmp_path / "Train Imgs").mkdir()
    (tmp_path / "Maps1_T").mkdir()
    core = tmp_path / "Train Imgs" / "slide001_core003.jpg"
    cv2.imwrite(str(core), rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "Maps1_T" / "slide001_core004_classimg_nonconvex.png"), indices())
    with pytest.raises(InputDataError, match="slide001_core003.jpg: no rater map in any Maps"):
        sources.gleason_records(tmp_path)


def indices():
    return np.zeros((16, 16), np.uint8)


def test_a_dataset_left_empty_is_named_before_slicing(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("image,mask,case,label\n")
    with pytest.raises(InputDataError, match="mine.csv: no custom images or cases found"):
        slicing.find_records("custom", csv)


def test_an_isic_id_found_twice_is_refused_not_deduplicated(tmp_path, rng):
    for folder in ("train", "validation"):
        (tmp_path / folder).mkdir()
        photo = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / folder / "ISIC_0000001.jpg"), photo)
        cv2.imwrite(str(tmp_path / folder / "ISIC_0000001_segmentation.png"), indices())
    with pytest.raises(InputDataError, match="ISIC_0000001 is also at .*train/ISIC_0000001.jpg"):
        sources.isic_records(tmp_path)


def test_a_rotated_jpeg_stays_aligned_with_its_mask(tmp_path):
    """A JPEG whose EXIF tag says "rotate 90°" is read as stored, as its PNG mask is."""
    photo = np.zeros((20, 40, 3), np.uint8)
    photo[:, :10] = 255  # a bright band on the left, where the mask is
    image = Image.fromarray(photo)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    image.save(tmp_path / "ISIC_0000001.jpg", exif=exif.tobytes(), quality=95)
    read = read_rgb(tmp_path / "ISIC_0000001.jpg")
    assert read.shape == (20, 40, 3) and read[:, :10].min() > 200 and read[:, 12:].max() < 50


def test_a_mask_drawn_in_transparency_is_refused_an_opaque_alpha_ignored(tmp_path):
    drawn = np.zeros((16, 16, 4), np.uint8)
    drawn[4:8, 4:8, 3] = 255  # black everywhere, the lesion only in the alpha channel
    Image.fromarray(drawn, "RGBA").save(tmp_path / "drawn.png")
    with pytest.raises(InputDataError, match="drawn.png: mask has an alpha channel with transp"):
        read_binary_mask(tmp_path / "drawn.png")
    opaque = np.zeros((16, 16, 4), np.uint8)
    opaque[..., 3] = 255
    opaque[4:8, 4:8, :3] = 255
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    assert read_binary_mask(tmp_path / "opaque.png").sum() == 16


def test_a_labels_csv_that_is_not_there_is_named_and_unlisted_images_counted(tmp_path, rng, caplog):
    for i in (1, 2):
        photo = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"ISIC_000000{i}.jpg"), photo)
        cv2.imwrite(str(tmp_path / f"ISIC_000000{i}_segmentation.png"), indices())
    with pytest.raises(InputDataError, match="lables.csv: labels CSV is missing"):
        sources.isic_records(tmp_path, tmp_path / "lables.csv")  # a typo in the config
    (tmp_path / "labels.csv").write_text("isic_id,benign_malignant\nISIC_0000001,malignant\n")
    with caplog.at_level(logging.WARNING):
        records = sources.isic_records(tmp_path, tmp_path / "labels.csv")
    assert [r.label for r in records] == ["malignant", "unknown"]
    assert "no row for 1 of 2 images" in caplog.text


# --- split manifests and split counts --------------------------------------------------------


def split_table(n=10, n_test=2):
    return pd.DataFrame(
        {
            "slice_id": [f"s{i}" for i in range(n)],
            "row": range(n),
            "image": [f"s{i}.png" for i in range(n)],
            "mask": [f"s{i}_mask.png" for i in range(n)],
            "case": [f"c{i}" for i in range(n)],
            "label": (["benign", "malignant"] * n)[:n],
            "foreground_pixels": [1] * n,
            "subset": ["train"] * (n - n_test) + ["test"] * n_test,
        }
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t.assign(subset="train"), "has no test rows"),
        (lambda t: pd.concat([t, t.iloc[[3]]]), "lists slice id 's3' more than once"),
        (lambda t: t.assign(label=[None] * len(t)), "has 10 rows without a clinical label"),
        (lambda t: t.drop(columns="label"), "no 'label' column"),
    ],
    ids=["empty test side", "duplicate slice ids", "no labels", "no label column"],
)
def test_a_bad_split_manifest_is_named(tmp_path, change, problem):
    path = tmp_path / "split1.csv"
    change(split_table()).to_csv(path, index=False)
    with pytest.raises(InputDataError, match=f"split1.csv: .*{problem}"):
        read_split(path, "test")


def test_more_splits_than_the_images_allow_names_the_config_key():
    manifest = split_table(n=3).drop(columns="subset")
    settings = SplitSettings(stratify=False)
    check_split_count(manifest, settings, 3, "manifest.csv")  # C(3, 1) = 3 different splits
    with pytest.raises(
        InputDataError,
        match="manifest.csv: config key 'splits.n_splits' asks for 5 splits, but 3 images "
        "allow only 3 different ones",
    ):
        check_split_count(manifest, settings, 5, "manifest.csv")


def test_a_label_missing_from_the_test_side_is_reported(caplog):
    manifest = split_table(n=10).drop(columns="subset")
    manifest["label"] = ["common"] * 9 + ["rare"]  # one rare image: it cannot be on both sides
    caplog.set_level(logging.WARNING, logger="synergyseg")
    seeds = [
        seed
        for seed in range(20)
        if "rare"
        not in set(random_split(manifest, SplitSettings(), seed).query("subset == 'test'").label)
    ]
    assert seeds, "some seed must leave the rare image in training"
    assert "no test image labelled rare in this split" in caplog.text


# --- checkpoints and resume files ----------------------------------------------------------------


def save_checkpoint(path, model_spec: ModelSpec, meta_model: dict | None = None):
    model = VGGUNet(model_spec)
    meta_model = meta_model if meta_model is not None else dict(model_spec.__dict__)
    torch.save({"state_dict": model.state_dict(), "meta": {"spec": {"model": meta_model}}}, path)
    return path


def test_a_checkpoint_of_another_width_is_refused_against_the_config(tmp_path):
    path = save_checkpoint(tmp_path / "rep1.pt", ModelSpec("default", 0.125))
    config_model = {"variant": "default", "width": 0.25, "bn_momentum": 0.01}
    with pytest.raises(
        InputDataError,
        match=r"rep1.pt: was trained with another model: width 0.125 \(config 0.25\)",
    ):
        load_checkpoint(path, config_model)
    model, _ = load_checkpoint(path, {**config_model, "width": 0.125})
    assert isinstance(model, VGGUNet)


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    # the weights of a narrow network under the metadata of a wide one
    narrow = VGGUNet(ModelSpec("default", 0.125))
    wide = dict(ModelSpec("default", 0.25).__dict__)
    torch.save(
        {"state_dict": narrow.state_dict(), "meta": {"spec": {"model": wide}}}, tmp_path / "x.pt"
    )
    with pytest.raises(InputDataError, match="x.pt: does not fit its own model settings"):
        load_checkpoint(tmp_path / "x.pt")
    torch.save({"state_dict": narrow.state_dict(), "meta": {"spec": {}}}, tmp_path / "y.pt")
    with pytest.raises(InputDataError, match="y.pt: has no valid model settings"):
        load_checkpoint(tmp_path / "y.pt")


def test_a_pickled_payload_is_refused_without_advising_to_unpickle_it(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    torch.save({"state_dict": {}, "meta": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(InputDataError) as err:
        load_checkpoint(tmp_path / "evil.pt")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'evil.pt'}: refused: not loadable with weights_only")
    assert "Re-running" not in message and "Do not load it with weights_only=False" in message


# --- config: each problem named by its dotted config path --------------------------------------


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c["splits"].update(n_split=3), "config key 'splits.n_split': unknown key"),
        (
            lambda c: c["datasets"]["skin"]["slices"].update(width="wide"),
            "config key 'datasets.skin.slices.width': 'wide' is not of type 'integer'",
        ),
        (
            lambda c: c["train"].update(replicates=0),
            "config key 'train.replicates': 0 is less than the minimum of 1",
        ),
        (lambda c: c.update(device="gpu"), "config key 'device': 'gpu' is not one of"),
    ],
    ids=["unknown key", "wrong type", "out of range", "not a choice"],
)
def test_config_problems_name_the_key_path(edit, expected):
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    edit(config)
    problem = schema_problem(config, ROOT / "config" / "schema.yaml")
    assert problem is not None and str(problem).startswith(expected), str(problem)


def test_a_jpeg_with_trailing_data_after_its_end_is_read(tmp_path, rng):
    # some cameras and tools append data after the end-of-image marker: not a truncation
    photo = tmp_path / "ISIC_0000002.jpg"
    pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    cv2.imwrite(str(photo), pixels)
    expected = read_rgb(photo)
    photo.write_bytes(photo.read_bytes() + bytes(rng.integers(1, 255, 8000, dtype=np.uint8)))
    assert (read_rgb(photo) == expected).all()


def test_a_custom_label_that_reads_as_missing_is_refused(tmp_path):
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(tmp_path / f"{name}_mask.png"), np.zeros((8, 8), np.uint8))
    csv = tmp_path / "mine.csv"
    csv.write_text("image,mask,case,label\na.png,a_mask.png,p1,benign\nb.png,b_mask.png,p2,NA\n")
    with pytest.raises(InputDataError, match=r"mine.csv: line 3: label 'NA' is empty or reads"):
        sources.custom_records(csv)
    csv.write_text("image,mask,case,label\na.png,a_mask.png,,benign\n")
    with pytest.raises(InputDataError, match=r"mine.csv: line 2: case '' is empty"):
        sources.custom_records(csv)


def test_a_custom_csv_is_read_as_people_write_it_and_its_mistakes_named(tmp_path):
    """Spaces around values and header names are not part of them; an empty path, every
    missing file, a clash of image names and a folder in place of the CSV are named."""
    (tmp_path / "p1").mkdir()
    (tmp_path / "p2").mkdir()
    for name in ("p1/a", "p1/b", "p2/a"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(tmp_path / f"{name}_mask.png"), np.zeros((8, 8), np.uint8))
    csv = tmp_path / "mine.csv"
    csv.write_text(
        "image, mask, case, label\n"
        "p1/a.png,p1/a_mask.png, p1,benign \n"
        " p1/b.png ,p1/b_mask.png,p1 ,benign\n"
    )
    records = sources.custom_records(csv)
    assert [(r.slice_id, r.case, r.label) for r in records] == [
        ("a", "p1", "benign"),
        ("b", "p1", "benign"),
    ]
    assert records[1].image == tmp_path / "p1" / "b.png"

    csv.write_text("image,mask,case,label\np1/a.png,,p1,benign\n")
    with pytest.raises(InputDataError, match="mine.csv: line 2: no mask path"):
        sources.custom_records(csv)
    csv.write_text(
        "image,mask,case,label\nx.png,p1/a_mask.png,p1,b\np1/a.png,y.png,p1,b\np1/b.png,"
        "p1/b_mask.png,p1,b\n"
    )
    with pytest.raises(
        InputDataError,
        match=r"mine.csv: 2 listed file\(s\) missing: line 2: .*x.png; line 3: .*y.png",
    ):
        sources.custom_records(csv)
    csv.write_text(
        "image,mask,case,label\np1/a.png,p1/a_mask.png,p1,b\np2/a.png,p2/a_mask.png,p2,b\n"
    )
    with pytest.raises(
        InputDataError, match=r"used twice, e.g. 'a' \(line 2: p1/a.png; line 3: p2/a.png\)"
    ):
        sources.custom_records(csv)
    with pytest.raises(InputDataError, match="is a folder; format custom needs a CSV"):
        sources.custom_records(tmp_path)
    csv.write_text("image;mask;case;label\np1/a.png;p1/a_mask.png;p1;b\n")
    with pytest.raises(InputDataError, match="must be comma-separated"):
        sources.custom_records(csv)


def test_a_zero_one_mask_read_as_zero_255_says_which_setting_reads_it(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 1
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    with pytest.raises(
        InputDataError, match=r"besides 0 and 255 \(format custom: .*mask_foreground: 1\)"
    ):
        read_binary_mask(tmp_path / "m.png")
    assert read_binary_mask(tmp_path / "m.png", foreground=1).sum() == 9
    mask[0, 0] = 255  # 1 beside 255: a damaged mask, not a convention
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    with pytest.raises(InputDataError, match=r"besides 0 and 255$"):
        read_binary_mask(tmp_path / "m.png")

"""CT reading: windowing, axial axis of both layouts, DICOM == NIfTI, named errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from synergyseg.data import ct, phantoms
from synergyseg.errors import InputDataError


def test_window_maps_bounds_to_0_and_255_and_clips():
    hu = np.array([-2000, -512, 0, 256, 512, 3000], dtype=np.int16)
    out = ct.window_to_uint8(hu, -512, 512)
    # hand-worked: (hu + 512) / 1024 * 255, rounded; outside the window clipped
    np.testing.assert_array_equal(out, [0, 0, 128, 191, 255, 255])
    assert out.dtype == np.uint8


def test_window_rejects_empty_window():
    with pytest.raises(ValueError, match="must exceed"):
        ct.window_to_uint8(np.zeros(3), 100, 100)


def test_pad_to_square_centres_and_keeps_content():
    plane = np.arange(6, dtype=np.uint8).reshape(2, 3) + 1
    padded = ct.pad_to_square(plane, fill=0)
    assert padded.shape == (3, 3)
    np.testing.assert_array_equal(padded[0], [1, 2, 3])
    np.testing.assert_array_equal(padded[2], [0, 0, 0])


def test_kits_layout_and_dicom_layout_give_the_same_axial_slices(tmp_path, rng):
    hu, _ = phantoms.kidney_volume(rng, n_slices=6, rows=32, cols=40)
    phantoms.write_nifti(
        phantoms._kits_nifti_image(hu, (3.0, 0.8, 0.8)), tmp_path / "imaging.nii.gz"
    )
    phantoms.write_dicom_series(hu, tmp_path / "dicom", (3.0, 0.8, 0.8), seed=1)

    nifti = ct.read_volume(tmp_path / "imaging.nii.gz")
    dicom = ct.read_volume(tmp_path / "dicom")
    assert nifti.GetSize() == (6, 32, 40)  # KiTS19: slice axis first
    assert dicom.GetSize() == (40, 32, 6)  # DICOM: slice axis last
    assert ct.axial_axis(nifti) == 0 and ct.axial_axis(dicom) == 2
    np.testing.assert_array_equal(ct.axial_stack(nifti), hu)
    np.testing.assert_array_equal(ct.axial_stack(dicom), hu)


def test_dicom_rescale_is_applied(tmp_path, rng):
    hu, _ = phantoms.kidney_volume(rng, n_slices=4, rows=32, cols=32)
    phantoms.write_dicom_series(hu, tmp_path / "dicom", (3.0, 0.8, 0.8), seed=2)
    first = sorted((tmp_path / "dicom").iterdir())[0]
    header = pydicom.dcmread(first)
    assert (header.RescaleSlope, header.RescaleIntercept) == (1, -1024)
    stored = header.pixel_array.astype(int)
    np.testing.assert_array_equal(stored - 1024, hu[0])  # stored values are HU + 1024
    assert ct.axial_stack(ct.read_volume(tmp_path / "dicom")).min() == hu.min()


def test_corrupt_nifti_is_a_named_error(tmp_path):
    bad = tmp_path / "imaging.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(InputDataError, match="imaging.nii.gz.*corrupt gzip"):
        ct.read_volume(bad)


def test_corrupt_dicom_file_is_named(tmp_path, rng):
    hu, _ = phantoms.kidney_volume(rng, n_slices=4, rows=32, cols=32)
    phantoms.write_dicom_series(hu, tmp_path / "dicom", (3.0, 0.8, 0.8), seed=3)
    victim = sorted((tmp_path / "dicom").iterdir())[2]
    victim.write_bytes(b"garbage" * 10)
    with pytest.raises(InputDataError, match=victim.name):
        ct.read_volume(tmp_path / "dicom")


def test_dicom_without_rescale_tags_is_refused(tmp_path, rng):
    hu, _ = phantoms.kidney_volume(rng, n_slices=3, rows=32, cols=32)
    phantoms.write_dicom_series(hu, tmp_path / "dicom", (3.0, 0.8, 0.8), seed=4)
    victim = sorted((tmp_path / "dicom").iterdir())[0]
    ds = pydicom.dcmread(victim)
    del ds.RescaleIntercept
    ds.save_as(victim)
    with pytest.raises(InputDataError, match="RescaleIntercept"):
        ct.read_volume(tmp_path / "dicom")


def test_oblique_direction_is_refused():
    image = sitk.Image(4, 4, 4, sitk.sitkInt16)
    c = np.cos(np.pi / 4)
    image.SetDirection((c, c, 0, -c, c, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="axial axis"):
        ct.axial_stack(image)


def test_atomic_outputs_get_normal_permissions(tmp_path):
    import os

    from synergyseg.atomic import atomic_directory, write_text

    mask = os.umask(0o022)
    try:
        write_text("x", tmp_path / "a.txt")
        with atomic_directory(tmp_path / "d"):
            pass
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_durable_outputs_reach_the_disk_before_and_after_their_rename(tmp_path, monkeypatch):
    import os

    from synergyseg import atomic

    synced, real_fsync = [], os.fsync

    def fsync(fd):
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with atomic.atomic_path(tmp_path / "state.pt", durable=True) as tmp:
        tmp.write_bytes(b"weights")
    # the file's data under its temporary name, then the folder that now names it
    assert synced[0].startswith(".state.pt.") and synced[1:] == [tmp_path.name]
    synced.clear()
    atomic.write_text("x", tmp_path / "a.txt")
    assert synced == []  # ordinary outputs skip it: tens of thousands of small files


def test_only_what_a_writer_left_is_taken_for_a_stale_temporary(tmp_path):
    """The names mkstemp and mkdtemp make (".<name>." + 8 random characters, + a suffix) are
    removed; a user's backup and the temporaries of an output "<name>.<x>" are not."""
    from synergyseg.atomic import remove_stale_temporaries

    left = [tmp_path / ".rep1.pt.k1ll3d_0.pt", tmp_path / ".rep1.pt.0abc_xyz"]
    kept = [tmp_path / ".rep1.pt.bak", tmp_path / ".rep1.pt.y.k1ll3d_0.y", tmp_path / "rep1.pt"]
    for path in left[:1] + kept:
        path.write_text("x")
    left[1].mkdir()
    (left[1] / "half.jpg").write_text("x")
    assert remove_stale_temporaries(tmp_path / "rep1.pt") == sorted(left)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_a_directory_output_is_never_left_half_replaced(tmp_path, monkeypatch):
    """An extracted ISIC part is a folder of gigabytes: replacing it must never leave a
    half-deleted old one under its name, and what a killed writer left is cleared."""
    import os

    from synergyseg import atomic

    target = tmp_path / "part"
    with atomic.atomic_directory(target) as tmp:
        (tmp / "old.txt").write_text("old")
    stale = tmp_path / ".part.abc123_x"  # a writer killed outright, mid-extraction
    stale.mkdir()
    (stale / "half.jpg").write_text("x")
    with atomic.atomic_directory(target) as tmp:
        assert not stale.exists()  # cleared before the new writer starts
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]

    real_replace, calls = os.replace, []

    def replace(source, destination):  # the job dies between the two renames
        calls.append(destination)
        if Path(destination) == target and len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt), atomic.atomic_directory(target) as tmp:
        (tmp / "newer.txt").write_text("newer")
    assert not target.exists()  # absent, so a rerun makes it; never a half-deleted old one
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    with atomic.atomic_directory(target) as tmp:
        (tmp / "newest.txt").write_text("newest")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part"]  # the aside copy cleared


def write_nifti(path, array, spacing=(0.8, 0.8, 3.0), origin=(0.0, 0.0, 0.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return path


def test_truncated_nifti_gzip_is_refused_not_read_as_garbage(tmp_path, rng):
    # an interrupted download: ITK alone reads it and fills the missing voxels with garbage
    path = write_nifti(tmp_path / "imaging.nii.gz", rng.integers(-1000, 1000, (8, 32, 32)))
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.9)])
    with pytest.raises(InputDataError, match="imaging.nii.gz: truncated or corrupt gzip"):
        ct.read_volume(path)


def dicom_series(tmp_path, rng, n_slices=6, name="dicom", seed=3):
    hu, _ = phantoms.kidney_volume(rng, n_slices=n_slices, rows=32, cols=32)
    phantoms.write_dicom_series(hu, tmp_path / name, (3.0, 0.8, 0.8), seed=seed)
    return tmp_path / name


def test_dicom_series_with_a_slice_missing_in_the_middle_is_refused(tmp_path, rng):
    folder = dicom_series(tmp_path, rng)
    (folder / "IM00003.dcm").unlink()
    with pytest.raises(InputDataError) as err:
        ct.read_volume(folder)
    message = str(err.value)
    assert message.startswith(f"{folder}: DICOM slices are not evenly spaced")
    assert "6 mm between IM00002.dcm and IM00004.dcm, 3 mm elsewhere" in message
    assert "1 slice(s) missing" in message


def test_two_dicom_series_in_one_folder_are_refused(tmp_path, rng):
    folder = dicom_series(tmp_path, rng, n_slices=4)
    other = dicom_series(tmp_path, rng, n_slices=4, name="other", seed=9)
    for path in other.iterdir():  # same positions, another series UID
        path.rename(folder / f"B{path.name}")
    with pytest.raises(InputDataError, match="dicom: holds 2 DICOM series; put each series in"):
        ct.read_volume(folder)


def test_dicom_slices_of_different_sizes_are_refused(tmp_path, rng):
    folder = dicom_series(tmp_path, rng, n_slices=4)
    victim = folder / "IM00002.dcm"
    ds = pydicom.dcmread(victim)
    ds.Rows, ds.Columns = 16, 32
    ds.PixelData = np.zeros((16, 32), np.uint16).tobytes()
    ds.save_as(victim)
    with pytest.raises(InputDataError, match="IM00002.dcm: slice is 16x32, the series is 32x32"):
        ct.read_volume(folder)


def test_a_non_dicom_file_is_named_even_when_sizing_the_job(tmp_path, rng):
    folder = dicom_series(tmp_path, rng, n_slices=4)
    (folder / "A_README.txt").write_text("exported with care")
    for reader in (ct.read_volume, ct.volume_voxels):
        with pytest.raises(InputDataError, match="A_README.txt: not a readable DICOM file"):
            reader(folder)


def test_segmentation_on_another_grid_is_refused(tmp_path, rng):
    from synergyseg.data.slicing import SliceSettings, slice_volume
    from synergyseg.data.sources import VolumeRecord

    volume = rng.integers(-1000, 1000, (6, 32, 32)).astype(np.int16)
    labels = np.zeros((6, 32, 32), np.uint8)
    imaging = write_nifti(tmp_path / "imaging.nii.gz", volume)
    cases = {
        "spacing": dict(spacing=(0.8, 0.8, 2.5)),
        "origin": dict(origin=(0.0, 12.0, 0.0)),
    }
    for name, geometry in cases.items():
        seg = write_nifti(tmp_path / f"{name}.nii.gz", labels, **geometry)
        record = VolumeRecord("case_00000", imaging, seg)
        with pytest.raises(InputDataError, match=f"{name}.nii.gz: segmentation has"):
            slice_volume(record, SliceSettings(32, 32))
    flipped = sitk.GetImageFromArray(labels)
    flipped.SetSpacing((0.8, 0.8, 3.0))
    flipped.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))  # mirrored in x, same origin
    sitk.WriteImage(flipped, str(tmp_path / "flipped.nii.gz"))
    record = VolumeRecord("case_00000", imaging, tmp_path / "flipped.nii.gz")
    with pytest.raises(InputDataError, match="another origin or direction"):
        slice_volume(record, SliceSettings(32, 32))
    # the same grid passes
    same = write_nifti(tmp_path / "same.nii.gz", labels)
    assert len(slice_volume(VolumeRecord("case_00000", imaging, same), SliceSettings(32, 32))) == 6


def test_a_segmentation_stored_in_the_opposite_sense_labels_the_same_voxels(tmp_path, rng):
    """A segmentation covering the imaging's box with every axis reversed (as a RAS export
    beside LPS imaging) must label the same anatomy: its voxels are put in the imaging's order."""
    from synergyseg.data.slicing import SliceSettings, slice_volume
    from synergyseg.data.sources import VolumeRecord

    volume = rng.integers(-1000, 1000, (6, 32, 32)).astype(np.int16)
    labels = np.zeros((6, 32, 32), np.uint8)
    labels[1, 2:9, 20:30] = 1  # one asymmetric blob, near a corner of one slice
    imaging = write_nifti(tmp_path / "imaging.nii.gz", volume)
    reference = slice_volume(
        VolumeRecord("case_00000", imaging, write_nifti(tmp_path / "seg.nii.gz", labels)),
        SliceSettings(32, 32),
    )
    reversed_seg = sitk.GetImageFromArray(np.ascontiguousarray(labels[::-1, ::-1, ::-1]))
    reversed_seg.SetSpacing((0.8, 0.8, 3.0))
    reversed_seg.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, -1))
    reversed_seg.SetOrigin((31 * 0.8, 31 * 0.8, 5 * 3.0))  # the imaging's far corner
    sitk.WriteImage(reversed_seg, str(tmp_path / "reversed.nii.gz"))
    # SimpleITK agrees that both segmentations label the same points in space
    resampled = sitk.Resample(
        reversed_seg, sitk.ReadImage(str(imaging)), sitk.Transform(), sitk.sitkNearestNeighbor
    )
    np.testing.assert_array_equal(sitk.GetArrayFromImage(resampled), labels)
    record = VolumeRecord("case_00000", imaging, tmp_path / "reversed.nii.gz")
    slices = slice_volume(record, SliceSettings(32, 32))
    assert [s.label for s in slices] == [s.label for s in reference]
    assert slices[1].label == "kidney"
    for got, expected in zip(slices, reference, strict=True):
        np.testing.assert_array_equal(got.mask, expected.mask)


def test_a_tilted_volume_is_refused_with_its_angle():
    image = sitk.Image(4, 4, 4, sitk.sitkInt16)
    angle = np.deg2rad(20)
    c, s = np.cos(angle), np.sin(angle)
    image.SetDirection((1, 0, 0, 0, c, -s, 0, s, c))  # tilted 20 degrees about x
    with pytest.raises(ValueError, match="20 degrees off"):
        ct.axial_stack(image)
    small = sitk.Image(4, 4, 4, sitk.sitkInt16)
    c, s = np.cos(np.deg2rad(2)), np.sin(np.deg2rad(2))
    small.SetDirection((1, 0, 0, 0, c, -s, 0, s, c))  # a 2 degree gantry tilt is accepted
    assert ct.axial_stack(small).shape == (4, 4, 4)


def test_kits_labels_outside_0_1_2_are_named(tmp_path, rng):
    from synergyseg.data.slicing import SliceSettings, slice_volume
    from synergyseg.data.sources import VolumeRecord

    imaging = write_nifti(tmp_path / "imaging.nii.gz", rng.integers(-1000, 1000, (4, 32, 32)))
    labels = np.zeros((4, 32, 32), np.uint8)
    labels[1, 5:9, 5:9] = 7
    seg = write_nifti(tmp_path / "segmentation.nii.gz", labels)
    with pytest.raises(InputDataError, match=r"segmentation.nii.gz: labels \[7\] outside"):
        slice_volume(VolumeRecord("case_00000", imaging, seg), SliceSettings(32, 32))


def test_dicom_positions_rounded_by_the_scanner_are_accepted(tmp_path, rng):
    # 0.625 mm slices stored with one decimal: gaps of 0.6 and 0.7 mm, no slice missing
    hu, _ = phantoms.kidney_volume(rng, n_slices=6, rows=32, cols=32)
    phantoms.write_dicom_series(hu, tmp_path / "dicom", (0.625, 0.8, 0.8), seed=5)
    for path in sorted((tmp_path / "dicom").iterdir()):
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, round(z, 1)]
        ds.save_as(path)
    assert ct.read_volume(tmp_path / "dicom").GetSize()[2] == 6

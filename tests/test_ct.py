"""CT reading: windowing, axial axis of both layouts, DICOM == NIfTI, named errors for bad files."""

from __future__ import annotations

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
    with pytest.raises(InputDataError, match="imaging.nii.gz.*not a readable volume"):
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

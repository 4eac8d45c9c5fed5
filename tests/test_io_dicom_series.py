"""A DICOM series given as a folder, with its mask as a NIfTI / NRRD volume or a DICOM-SEG.

Series are written with pydicom (real headers: ImagePositionPatient, ImageOrientationPatient,
PixelSpacing, SliceThickness, RescaleSlope/Intercept), their files named in a shuffled order, so
only the headers give the slice order. The expected volume and geometry come from the arrays and
positions written, not from any reader.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from dicom_files import orientation_rotated, write_seg, write_series
from dlradiomics.cohort import Cohort
from dlradiomics.io import FileHashCache, ImageReadError, load_roi, load_roi_volume, read_image, sha256_file

SPACING = (3.0, 0.7, 0.8)  # slice gap, row, col (mm)
ORIGIN = (-120.0, -80.0, 40.0)


@pytest.fixture()
def volume():
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 1000, size=(6, 20, 24)).astype(np.uint16)
    lesion = np.zeros(stored.shape, np.uint8)
    lesion[1:5, 5:15, 6:18] = 1
    lesion[3, 4:16, 5:19] = 1  # slice 3 has the largest lesion area
    return stored, lesion


def _expected_direction(row, col):
    normal = np.cross(row, col)
    # SimpleITK's direction, row-major: column k is the direction of index axis k (col, row, slice).
    return np.column_stack([row, col, normal]).ravel()


def _mask_volume(path, lesion, row, col, origin=ORIGIN, spacing=SPACING):
    image = sitk.GetImageFromArray(lesion)
    image.SetSpacing((spacing[2], spacing[1], spacing[0]))
    image.SetOrigin(tuple(float(v) for v in origin))
    image.SetDirection(tuple(_expected_direction(row, col)))
    sitk.WriteImage(image, str(path))
    return path


def test_series_is_read_in_slice_order_with_rescale_and_geometry(tmp_path, volume):
    stored, _ = volume
    row, col = orientation_rotated(30)
    slopes, intercepts = [0.5] * 6, [-100, -50, 0, 50, 100, 150]
    write_series(tmp_path / "series", stored, spacing=SPACING, origin=ORIGIN, orientation=(row, col), slopes=slopes,
                 intercepts=intercepts)

    read = read_image(tmp_path / "series")

    expected = stored * 0.5 + np.asarray(intercepts, dtype=float)[:, None, None]
    np.testing.assert_array_equal(read.array, expected)
    assert read.spacing == pytest.approx(SPACING)
    assert read.origin == pytest.approx(ORIGIN)
    assert read.direction == pytest.approx(tuple(_expected_direction(row, col)))
    assert read.spacing_unit == "mm" and read.dtype == "uint16"


def test_slices_are_sorted_along_the_normal_not_by_file_name_or_z(tmp_path, volume):
    # An oblique plane tilted about x: the normal is not the z axis, so sorting by z alone or by
    # instance number would not do; the written order of files is shuffled.
    stored, _ = volume
    angle = np.deg2rad(35)
    row, col = np.array([1.0, 0, 0]), np.array([0, np.cos(angle), -np.sin(angle)])
    write_series(tmp_path / "oblique", stored, spacing=SPACING, origin=ORIGIN, orientation=(row, col),
                 shuffle_seed=7)
    read = read_image(tmp_path / "oblique")
    np.testing.assert_array_equal(read.array, stored.astype(float))
    assert read.origin == pytest.approx(ORIGIN)


def test_several_series_in_one_folder_are_refused_naming_them(tmp_path, volume):
    stored, _ = volume
    first = write_series(tmp_path / "mixed", stored, name_prefix="A")[0].SeriesInstanceUID
    second = write_series(tmp_path / "mixed", stored[:3], name_prefix="B")[0].SeriesInstanceUID
    with pytest.raises(ImageReadError, match="holds 2 DICOM series") as error:
        read_image(tmp_path / "mixed")
    message = str(error.value)
    assert first in message and second in message and "6 file(s)" in message and "3 file(s)" in message
    assert str(tmp_path / "mixed") in message


def test_a_missing_slice_is_refused(tmp_path, volume):
    stored, _ = volume
    write_series(tmp_path / "gap", stored, skip=(2,))
    with pytest.raises(ImageReadError, match="a slice is missing"):
        read_image(tmp_path / "gap")


def test_a_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match="no DICOM series"):
        read_image(tmp_path / "empty")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_volume_mask_of_the_same_geometry(tmp_path, volume, suffix):
    stored, lesion = volume
    row, col = orientation_rotated(30)
    write_series(tmp_path / "series", stored, spacing=SPACING, origin=ORIGIN, orientation=(row, col))
    mask = _mask_volume(tmp_path / f"mask{suffix}", lesion, row, col)

    roi = load_roi_volume(tmp_path / "series", mask)
    np.testing.assert_array_equal(roi.mask, lesion)
    np.testing.assert_array_equal(roi.image, stored.astype(np.float32))
    assert roi.spacing == pytest.approx(SPACING)
    assert roi.largest_slice == 3
    plane = load_roi(tmp_path / "series", mask)  # the 2D path: the largest lesion slice
    assert plane.slice_index == 3 and plane.spacing == pytest.approx(SPACING[1:])
    np.testing.assert_array_equal(plane.mask, lesion[3])


@pytest.mark.parametrize("change", ["origin", "spacing", "direction"])
def test_volume_mask_on_another_grid_is_refused_naming_both_files(tmp_path, volume, change):
    stored, lesion = volume
    row, col = orientation_rotated(30)
    write_series(tmp_path / "series", stored, spacing=SPACING, origin=ORIGIN, orientation=(row, col))
    kwargs = {"origin": (ORIGIN[0] + 2.0, *ORIGIN[1:])} if change == "origin" else {}
    if change == "spacing":
        kwargs["spacing"] = (2.0, *SPACING[1:])
    mask_row, mask_col = orientation_rotated(0) if change == "direction" else (row, col)
    mask = _mask_volume(tmp_path / "mask.nii.gz", lesion, mask_row, mask_col, **kwargs)

    with pytest.raises(ImageReadError) as error:
        load_roi_volume(tmp_path / "series", mask)
    assert error.value.kind == "geometry_mismatch"
    message = str(error.value)
    assert str(mask) in message and str(tmp_path / "series") in message and change in message


def test_nifti_float32_rounding_of_the_same_geometry_is_accepted(tmp_path, volume):
    # NIfTI keeps its affine in float32: a mask saved from the very image differs by ~1e-5 mm.
    stored, lesion = volume
    row, col = orientation_rotated(30)
    origin = (-123.4567891, -81.2345678, 47.7654321)
    write_series(tmp_path / "series", stored, spacing=SPACING, origin=origin, orientation=(row, col))
    mask = _mask_volume(tmp_path / "mask.nii.gz", lesion, row, col, origin=tuple(float(np.float32(v)) for v in origin))
    assert load_roi_volume(tmp_path / "series", mask).mask.sum() == lesion.sum()


def test_dicom_seg_mask_is_laid_onto_the_series_slices(tmp_path, volume):
    stored, lesion = volume
    sources = write_series(tmp_path / "series", stored, orientation=orientation_rotated(30), shuffle_seed=11)
    labels = lesion.copy()
    labels[0, 0:3, 0:3] = 2  # a second segment elsewhere
    seg = write_seg(tmp_path / "lesion_seg.dcm", sources, labels, segments=2)

    read = read_image(seg, as_labels=True, reference=read_image(tmp_path / "series"))
    np.testing.assert_array_equal(read.array, labels)
    roi = load_roi_volume(tmp_path / "series", seg, mask_label=1)
    np.testing.assert_array_equal(roi.mask, lesion)
    with pytest.raises(ImageReadError, match="mask label 3 not found"):
        load_roi_volume(tmp_path / "series", seg, mask_label=3)


def test_dicom_seg_of_another_series_is_refused(tmp_path, volume):
    stored, lesion = volume
    other = write_series(tmp_path / "other", stored)
    write_series(tmp_path / "series", stored)
    seg = write_seg(tmp_path / "seg.dcm", other, lesion)
    with pytest.raises(ImageReadError, match="segments series .* but its image .* is series") as error:
        load_roi(tmp_path / "series", seg)
    assert error.value.kind == "geometry_mismatch" and str(seg) in str(error.value)


def test_dicom_seg_needs_its_dicom_image(tmp_path, volume):
    stored, lesion = volume
    seg = write_seg(tmp_path / "seg.dcm", write_series(tmp_path / "series", stored), lesion)
    with pytest.raises(ImageReadError, match="can only be read as the mask of the DICOM image"):
        read_image(seg, as_labels=True)
    from roi_files import lesion_image, write_png

    png = write_png(tmp_path / "other.png", lesion_image()[0])
    with pytest.raises(ImageReadError, match=f"its image {png} is not one"):
        load_roi(png, seg)


def test_a_2d_image_cannot_give_a_volume(tmp_path):
    from roi_files import lesion_image, write_png

    image, mask = lesion_image()
    with pytest.raises(ImageReadError, match="features in 3D need a volume"):
        load_roi_volume(write_png(tmp_path / "i.png", image), write_png(tmp_path / "m.png", mask * 255))


def test_folder_hash_follows_its_files(tmp_path, volume):
    stored, _ = volume
    write_series(tmp_path / "series", stored)
    cache = FileHashCache()
    first = sha256_file(tmp_path / "series")
    assert cache.sha256(tmp_path / "series") == first
    (tmp_path / "series" / "IM0000.dcm").rename(tmp_path / "series" / "renamed.dcm")
    assert sha256_file(tmp_path / "series") != first


def test_manifest_accepts_a_series_folder_and_refuses_a_folder_without_dicom(tmp_path, volume):
    stored, lesion = volume
    row, col = orientation_rotated(0)
    write_series(tmp_path / "series", stored, spacing=SPACING, origin=ORIGIN, orientation=(row, col))
    _mask_volume(tmp_path / "mask.nii.gz", lesion, row, col)
    (tmp_path / "empty").mkdir()
    frame = [
        {"patient_id": "P1", "modality": "MRI", "image": "series", "mask": "mask.nii.gz", "label": "malignant"},
        {"patient_id": "P2", "modality": "MRI", "image": "empty", "mask": "mask.nii.gz", "label": "benign"},
    ]
    import pandas as pd

    cohort = Cohort.from_table(pd.DataFrame(frame), tmp_path, check_images=True)
    assert list(cohort.table["roi_id"]) == ["P1/MRI/series"]
    assert len(cohort.problems) == 1 and cohort.problems[0].row == 2
    assert "folder without DICOM files" in cohort.problems[0].message

"""load_roi across formats: raster, DICOM, NIfTI / NRRD, multi-label masks, and every error."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from dlradiomics.io import (
    ColourImageWarning,
    ImageReadError,
    IntensityConventionWarning,
    RoiImage,
    load_roi,
    read_image,
    sha256_file,
)
from roi_files import lesion_image, write_dicom, write_png, write_volume


@pytest.fixture()
def grey_pair(tmp_path):
    image, mask = lesion_image()
    return image, mask, write_png(tmp_path / "img.png", image), write_png(tmp_path / "mask.png", mask * 255)


def test_png_with_0_255_mask_keeps_original_intensities(grey_pair):
    image, mask, image_path, mask_path = grey_pair
    roi = load_roi(image_path, mask_path)
    assert isinstance(roi, RoiImage)
    assert roi.image.dtype == np.float32 and roi.mask.dtype == np.uint8
    np.testing.assert_array_equal(roi.image, image.astype(np.float32))
    np.testing.assert_array_equal(roi.mask, mask)
    assert roi.spacing == (1.0, 1.0) and roi.spacing_unit == "pixel" and roi.slice_index is None
    assert not roi.image.flags.writeable and not roi.mask.flags.writeable


@pytest.mark.parametrize("suffix", [".tif", ".bmp", ".pgm"])
def test_lossless_raster_formats_read_the_same_pixels(tmp_path, suffix):
    image, mask = lesion_image()
    roi = load_roi(write_png(tmp_path / f"img{suffix}", image), write_png(tmp_path / "mask.png", mask))
    np.testing.assert_array_equal(roi.image, image)


def test_jpeg_is_read_close_to_original(tmp_path):
    image, mask = lesion_image()
    Image.fromarray(image).save(tmp_path / "img.jpg", quality=95)
    roi = load_roi(tmp_path / "img.jpg", write_png(tmp_path / "mask.png", mask))
    assert roi.image.shape == image.shape
    assert np.abs(roi.image - image).mean() < 8  # lossy, but the same picture


def test_16_bit_copy_of_an_8_bit_png_reads_to_the_same_intensities(tmp_path, grey_pair):
    # The convention: integer rasters on the 8-bit scale, value * 255 / (2**bits - 1). A 16-bit
    # copy made as the PNG specification scales samples (each value times 257) reads back exactly.
    image, _, image_path, mask_path = grey_pair
    Image.fromarray(image.astype(np.uint16) * 257).save(tmp_path / "img16.png")
    eight, sixteen = load_roi(image_path, mask_path), load_roi(tmp_path / "img16.png", mask_path)
    np.testing.assert_array_equal(sixteen.image, eight.image)
    assert (eight.source_dtype, eight.source_bit_depth) == ("uint8", 8)
    assert (sixteen.source_dtype, sixteen.source_bit_depth) == ("uint16", 16)


def test_genuine_16_bit_png_is_read_on_the_8_bit_scale(tmp_path):
    image = (np.arange(40 * 50, dtype=np.uint16).reshape(40, 50) * 20).astype(np.uint16)
    _, mask = lesion_image()
    Image.fromarray(image).save(tmp_path / "img16.png")
    roi = load_roi(tmp_path / "img16.png", write_png(tmp_path / "mask.png", mask))
    np.testing.assert_allclose(roi.image, image * (255 / 65535), rtol=1e-6)


def test_unscaled_8_bit_data_in_a_16_bit_png_warns(tmp_path, grey_pair):
    image, _, _, mask_path = grey_pair
    Image.fromarray(image.astype(np.uint16)).save(tmp_path / "plain16.png")
    with pytest.warns(IntensityConventionWarning, match="plain16.png.*without scaling"):
        roi = load_roi(tmp_path / "plain16.png", mask_path)
    assert roi.image.max() <= 1.0


def test_intensity_profile_reports_storage_and_robust_percentiles(grey_pair):
    image, _, image_path, mask_path = grey_pair
    profile = load_roi(image_path, mask_path).intensity_profile()
    assert (profile.dtype, profile.bit_depth) == ("uint8", 8)
    assert profile.percentiles[50.0] == pytest.approx(np.percentile(image, 50))
    assert profile.as_dict()["p99.5"] == pytest.approx(np.percentile(image, 99.5))
    assert (profile.minimum, profile.maximum) == (image.min(), image.max())


def test_rgb_with_equal_channels_is_silent_and_exact(tmp_path, grey_pair):
    image, _, _, mask_path = grey_pair
    write_png(tmp_path / "rgb.png", np.stack([image] * 3, axis=-1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        roi = load_roi(tmp_path / "rgb.png", mask_path)
    np.testing.assert_array_equal(roi.image, image)


def test_rgb_with_differing_channels_warns_and_gives_luminance(tmp_path, grey_pair):
    image, _, _, mask_path = grey_pair
    colour = np.stack([image, image // 2, np.zeros_like(image)], axis=-1)
    write_png(tmp_path / "colour.png", colour)
    with pytest.warns(ColourImageWarning, match="colour.png"):
        roi = load_roi(tmp_path / "colour.png", mask_path)
    # Luminance lies between the darkest and brightest channel of every pixel.
    assert np.all(roi.image <= colour.max(axis=-1) + 1e-3) and np.all(roi.image >= colour.min(axis=-1) - 1e-3)
    assert roi.image.max() > 0


def test_multi_label_mask_selects_one_label(tmp_path, grey_pair):
    image, _, image_path, _ = grey_pair
    labels = np.zeros(image.shape, dtype=np.uint8)
    labels[2:6, 2:6] = 1
    labels[20:30, 20:40] = 2
    write_png(tmp_path / "labels.png", labels)
    assert load_roi(image_path, tmp_path / "labels.png", mask_label=2).mask.sum() == 200
    assert load_roi(image_path, tmp_path / "labels.png", mask_label=1).mask.sum() == 16
    assert load_roi(image_path, tmp_path / "labels.png").mask.sum() == 216
    with pytest.raises(ImageReadError, match=r"label 7 not found.*0, 1, 2"):
        load_roi(image_path, tmp_path / "labels.png", mask_label=7)


def test_wrong_size_mask_is_an_error_never_resized(tmp_path, grey_pair):
    _, _, image_path, _ = grey_pair
    write_png(tmp_path / "small.png", np.ones((20, 25), dtype=np.uint8))
    with pytest.raises(ImageReadError, match=r"small.png: mask size \(20, 25\) differs from image size \(40, 50\)"):
        load_roi(image_path, tmp_path / "small.png")


def test_empty_mask_is_an_error_naming_the_file(tmp_path, grey_pair):
    _, _, image_path, _ = grey_pair
    write_png(tmp_path / "empty.png", np.zeros((40, 50), dtype=np.uint8))
    with pytest.raises(ImageReadError, match=r"empty.png: mask is empty"):
        load_roi(image_path, tmp_path / "empty.png")


def test_corrupt_and_missing_files_are_errors(tmp_path, grey_pair):
    _, _, image_path, mask_path = grey_pair
    truncated = tmp_path / "corrupt.png"
    truncated.write_bytes(image_path.read_bytes()[:60])
    with pytest.raises(ImageReadError, match="corrupt.png: cannot read .png") as caught:
        load_roi(truncated, mask_path)
    assert caught.value.path == str(truncated)
    with pytest.raises(ImageReadError, match="nothere.png: file not found"):
        load_roi(tmp_path / "nothere.png", mask_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageReadError, match="unknown image format .txt"):
        load_roi(tmp_path / "notes.txt", mask_path)


def test_dicom_applies_rescale_slope_and_intercept(tmp_path):
    stored, mask = lesion_image()
    image_path = write_dicom(tmp_path / "ct.dcm", stored, slope=2.0, intercept=-100.0)
    roi = load_roi(image_path, write_png(tmp_path / "mask.png", mask))
    np.testing.assert_allclose(roi.image, stored * 2.0 - 100.0)
    assert roi.spacing == (0.5, 0.7) and roi.spacing_unit == "mm"


def test_dicom_voi_window_clips_outside_the_window(tmp_path):
    stored = np.tile(np.arange(0, 1000, 20, dtype=np.uint16), (40, 1))  # 40 x 50, values 0..980
    _, mask = lesion_image()
    image_path = write_dicom(tmp_path / "win.dcm", stored, window=(500.0, 200.0))
    roi = load_roi(image_path, write_png(tmp_path / "mask.png", mask))
    below, inside, above = stored[0] < 390, (stored[0] > 410) & (stored[0] < 590), stored[0] > 610
    row = roi.image[0]
    assert np.unique(row[below]).size == 1 and np.unique(row[above]).size == 1
    assert row[below][0] < row[inside].min() and row[inside].max() < row[above][0]
    assert np.all(np.diff(row[inside]) > 0)


def test_dicom_monochrome1_is_inverted(tmp_path):
    stored, mask = lesion_image()
    mono2 = load_roi(write_dicom(tmp_path / "m2.dcm", stored), write_png(tmp_path / "mask.png", mask))
    mono1 = load_roi(write_dicom(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1"), tmp_path / "mask.png")
    # Bright lesion in MONOCHROME2 stored values is dark once MONOCHROME1 is displayed correctly.
    assert mono2.image[mask == 1].mean() > mono2.image[mask == 0].mean()
    assert mono1.image[mask == 1].mean() < mono1.image[mask == 0].mean()
    assert mono1.image.min() == stored.min() and mono1.image.max() == stored.max()


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_volume_reduces_to_slice_with_largest_lesion(tmp_path, suffix):
    rng = np.random.default_rng(1)
    volume = rng.normal(100, 10, size=(5, 30, 40)).astype(np.float32)
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[1, 5:10, 5:10] = 1  # 25 pixels
    labels[3, 5:20, 5:25] = 1  # 300 pixels: the largest
    labels[4, 2:4, 2:4] = 3  # another label, larger only when label 3 is asked for alone
    image_path = write_volume(tmp_path / f"vol{suffix}", volume)
    mask_path = write_volume(tmp_path / f"seg{suffix}", labels)
    roi = load_roi(image_path, mask_path)
    assert roi.slice_index == 3 and roi.mask.sum() == 300
    np.testing.assert_allclose(roi.image, volume[3], rtol=1e-6)
    assert roi.spacing == pytest.approx((0.9, 0.8)) and roi.spacing_unit == "mm"
    named = load_roi(image_path, mask_path, slice_index=1)
    assert named.slice_index == 1 and named.mask.sum() == 25
    assert load_roi(image_path, mask_path, mask_label=3).slice_index == 4
    with pytest.raises(ImageReadError, match="mask is empty on slice 0"):
        load_roi(image_path, mask_path, slice_index=0)
    with pytest.raises(ImageReadError, match="slice 9 out of range"):
        load_roi(image_path, mask_path, slice_index=9)


def test_volume_with_wrong_size_mask_is_an_error(tmp_path):
    image_path = write_volume(tmp_path / "vol.nii.gz", np.zeros((4, 30, 40), dtype=np.float32))
    mask_path = write_volume(tmp_path / "seg.nii.gz", np.ones((4, 30, 41), dtype=np.uint8))
    with pytest.raises(ImageReadError, match=r"seg.nii.gz: mask size \(4, 30, 41\) differs"):
        load_roi(image_path, mask_path)


def test_to_sitk_carries_spacing_and_pixels(tmp_path):
    import SimpleITK as sitk

    stored, mask = lesion_image()
    roi = load_roi(write_dicom(tmp_path / "a.dcm", stored), write_png(tmp_path / "mask.png", mask))
    image, label = roi.to_sitk()
    assert image.GetSpacing() == pytest.approx((0.7, 0.5))  # (x, y) = (col, row)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), stored)
    assert sitk.GetArrayFromImage(label).sum() == mask.sum()


def test_read_image_and_sha256(tmp_path, grey_pair):
    import hashlib

    _, _, image_path, _ = grey_pair
    assert sha256_file(image_path) == hashlib.sha256(image_path.read_bytes()).hexdigest()
    assert read_image(image_path).array.shape == (40, 50)


def test_errors_carry_a_kind_and_survive_pickling(tmp_path, grey_pair):
    import pickle

    _, _, image_path, _ = grey_pair
    write_png(tmp_path / "empty.png", np.zeros((40, 50), dtype=np.uint8))
    with pytest.raises(ImageReadError) as caught:
        load_roi(image_path, tmp_path / "empty.png")
    assert caught.value.kind == "empty_mask"
    # Extraction workers send errors across processes; the fields must come back intact.
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.path, copy.problem, copy.kind, str(copy)) == (
        caught.value.path, caught.value.problem, "empty_mask", str(caught.value)
    )


def test_colour_mask_with_differing_channels_is_an_error(tmp_path, grey_pair):
    _, mask, image_path, _ = grey_pair
    write_png(tmp_path / "colour_mask.png", np.stack([mask * 255, mask * 0, mask * 0], axis=-1))
    with pytest.raises(ImageReadError, match="colour_mask.png: .*single-channel"):
        load_roi(image_path, tmp_path / "colour_mask.png")


def test_palette_mask_keeps_label_indices(tmp_path, grey_pair):
    _, mask, image_path, _ = grey_pair
    palette_mask = Image.fromarray(mask * 2).convert("P")  # indices 0 / 2
    palette_mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette_mask.save(tmp_path / "palette.png")
    assert load_roi(image_path, tmp_path / "palette.png", mask_label=2).mask.sum() == mask.sum()


def test_volume_with_2d_mask_needs_the_slice(tmp_path):
    volume = np.stack([np.full((30, 40), value, np.float32) for value in (1, 2, 3)])
    volume[:, 5:10, 5:10] += 10
    image_path = write_volume(tmp_path / "vol.nrrd", volume)
    mask = np.zeros((30, 40), np.uint8)
    mask[5:10, 5:10] = 1
    mask_path = write_png(tmp_path / "mask.png", mask)
    with pytest.raises(ImageReadError, match="must name the slice"):
        load_roi(image_path, mask_path)
    roi = load_roi(image_path, mask_path, slice_index=2)
    assert roi.slice_index == 2 and roi.image[0, 0] == 3 and roi.image[6, 6] == 13


def test_multi_frame_dicom_is_a_volume(tmp_path):
    frames = np.stack([lesion_image(seed=s)[0] for s in range(3)]).astype(np.uint16)
    labels = np.zeros(frames.shape, np.uint8)
    labels[1, 10:20, 10:20] = 1
    image_path = write_dicom(tmp_path / "multi.dcm", frames)
    mask_path = write_volume(tmp_path / "seg.nii.gz", labels)
    roi = load_roi(image_path, mask_path)
    assert roi.slice_index == 1
    np.testing.assert_array_equal(roi.image, frames[1])
    assert roi.spacing == (0.5, 0.7)


def test_jpeg_mask_noise_is_not_lesion(tmp_path, grey_pair):
    from dlradiomics.io import LossyMaskWarning

    _, mask, image_path, _ = grey_pair
    Image.fromarray(mask * 255).save(tmp_path / "mask.jpg", quality=75)
    noisy = np.asarray(Image.open(tmp_path / "mask.jpg"))
    assert (noisy != 0).sum() > mask.sum()  # the premise: JPEG adds non-zero noise around the lesion
    with pytest.warns(LossyMaskWarning, match="mask.jpg"):
        roi = load_roi(image_path, tmp_path / "mask.jpg")
    assert abs(int(roi.mask.sum()) - int(mask.sum())) <= 0.05 * mask.sum()

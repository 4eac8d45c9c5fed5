"""ROI crop and normalisation for the CNNs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dlradiomics.features.deep.preprocessing import (
    CropSettings,
    mask_bounding_box,
    prepare_roi,
    roi_crop,
    save_crop_png,
)
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _lesion_image():
    image = np.zeros((100, 200), dtype=np.float32)
    mask = np.zeros((100, 200), dtype=np.uint8)
    mask[40:60, 50:90] = 1  # 20 rows x 40 columns
    image[mask == 1] = 200.0
    return image, mask


def test_bounding_box_is_tight_without_margin_and_widened_by_the_fraction():
    _, mask = _lesion_image()
    assert mask_bounding_box(mask, 0.0) == (40, 60, 50, 90)
    # 10% of 20 rows = 2 rows each side; 10% of 40 columns = 4 columns each side.
    assert mask_bounding_box(mask, 0.1) == (38, 62, 46, 94)


def test_margin_is_clipped_at_the_image_border():
    mask = np.zeros((50, 50), dtype=np.uint8)
    mask[0:10, 45:50] = 1
    assert mask_bounding_box(mask, 1.0) == (0, 20, 40, 50)


def test_empty_mask_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        mask_bounding_box(np.zeros((5, 5), dtype=np.uint8))


def test_crop_keeps_image_and_mask_aligned():
    image, mask = _lesion_image()
    image_crop, mask_crop = roi_crop(image, mask, 0.5)
    assert image_crop.shape == mask_crop.shape == (40, 80)
    assert np.array_equal(image_crop == 200.0, mask_crop == 1)


def test_prepared_roi_is_three_equal_channels_normalised_at_the_input_size():
    image, mask = _lesion_image()
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    prepared = prepare_roi(image, mask, input_size=64, mean=mean, std=std, settings=CropSettings(0.5))
    assert prepared.tensor.shape == (3, 64, 64)
    assert prepared.crop.shape == prepared.mask.shape == (64, 64)
    # Undoing the normalisation gives back the same 0-1 crop in every channel.
    for channel in range(3):
        restored = prepared.tensor[channel] * std[channel] + mean[channel]
        torch.testing.assert_close(restored, torch.from_numpy(prepared.crop), atol=1e-5, rtol=0)
    assert prepared.crop.min() == pytest.approx(0.0) and prepared.crop.max() == pytest.approx(1.0)
    # The lesion fills the middle half of the crop in both directions (margin 0.5 each side).
    assert prepared.mask[32, 32] == 1 and prepared.mask[2, 2] == 0
    assert prepared.mask.mean() == pytest.approx(0.25, abs=0.03)


def test_flat_crop_does_not_divide_by_zero():
    image = np.full((30, 30), 7.0, dtype=np.float32)
    mask = np.ones((30, 30), dtype=np.uint8)
    prepared = prepare_roi(image, mask, input_size=16, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert torch.isfinite(prepared.tensor).all()


def test_crop_png_round_trips_to_8_bit(tmp_path):
    crop = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    path = save_crop_png(crop, tmp_path / "crops" / "one.png")
    saved = np.asarray(Image.open(path))
    assert saved.dtype == np.uint8 and saved.shape == (64, 64)
    assert saved[0, 0] == 0 and saved[-1, -1] == 255


def test_margin_outside_range_is_refused():
    with pytest.raises(ValueError, match="margin"):
        CropSettings(margin=-0.1)

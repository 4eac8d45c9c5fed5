"""Grad-CAM on the backbone's last convolutional block with a trained head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dlradiomics.features.deep.backbones import create_backbone
from dlradiomics.features.deep.gradcam import grad_cam_roi, lesion_mass_fraction, save_overlay
from dlradiomics.features.deep.preprocessing import CropSettings, prepare_roi
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_lesion_mass_fraction_counts_the_share_inside_the_mask():
    heatmap = np.zeros((4, 4))
    heatmap[0, :] = 1.0  # four cells of mass 1
    heatmap[3, 3] = 4.0
    mask = np.zeros((4, 4), dtype=np.uint8)
    mask[3, 3] = 1
    assert lesion_mass_fraction(heatmap, mask) == pytest.approx(0.5)
    assert np.isnan(lesion_mass_fraction(np.zeros((2, 2)), np.ones((2, 2))))


def _textured_lesion_on_flat_background(size=300):
    rng = np.random.default_rng(0)
    image = np.full((size, size), 90.0, dtype=np.float32)
    mask = np.zeros((size, size), dtype=np.uint8)
    rows, cols = np.ogrid[:size, :size]
    lesion = (rows - size // 2) ** 2 + (cols - size // 2) ** 2 < 30 ** 2
    mask[lesion] = 1
    image[lesion] = rng.uniform(0, 255, size=int(lesion.sum()))
    return image, mask


def _activation_sum_head(backbone) -> nn.Linear:
    # Class 1 scores the sum of the pooled features, class 0 nothing: Grad-CAM for class 1 then
    # weighs every channel equally and shows where the network's features fire.
    head = nn.Linear(backbone.embedding_dim, 2)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[1] = 1.0
        head.bias.zero_()
    return head


def test_heatmap_sits_on_a_textured_lesion_with_imagenet_weights():
    backbone = create_backbone("efficientnet_lite0", "imagenet")
    image, mask = _textured_lesion_on_flat_background()
    result = grad_cam_roi(backbone, _activation_sum_head(backbone), image, mask, settings=CropSettings(margin=1.0))
    assert result.heatmap.shape == result.mask.shape == (224, 224)
    assert 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0
    # A disc of radius r in a crop of side 6r (margin 1.0 each side): pi / 36 of the area.
    assert result.lesion_area_fraction == pytest.approx(np.pi / 36, abs=0.01)
    assert result.lesion_mass_fraction > 2 * result.lesion_area_fraction


def test_reported_probability_is_the_heads_probability_for_the_crop():
    backbone = create_backbone("efficientnet_lite0", None)
    image, mask = _textured_lesion_on_flat_background()
    torch.manual_seed(0)
    head = nn.Linear(backbone.embedding_dim, 2)
    result = grad_cam_roi(backbone, head, image, mask, target_class=0)
    prepared = prepare_roi(image, mask, input_size=224, mean=backbone.mean, std=backbone.std)
    with torch.no_grad():
        expected = torch.softmax(head(backbone.model(prepared.tensor[None])), dim=1)[0, 0].item()
    assert result.probability == pytest.approx(expected, abs=1e-5)
    assert result.target_class == 0


@pytest.mark.parametrize("name", ["resnet50", "vgg19"])
def test_grad_cam_runs_on_the_target_layer_of_other_backbones(name):
    backbone = create_backbone(name, None)
    image, mask = _textured_lesion_on_flat_background(120)
    result = grad_cam_roi(backbone, _activation_sum_head(backbone), image, mask)
    assert result.heatmap.shape == (224, 224)
    assert np.isfinite(result.heatmap).all()


def test_overlay_png_is_an_rgb_picture_of_the_crop(tmp_path):
    backbone = create_backbone("efficientnet_lite0", "imagenet")
    image, mask = _textured_lesion_on_flat_background()
    result = grad_cam_roi(backbone, _activation_sum_head(backbone), image, mask)
    path = save_overlay(result, tmp_path / "overlays" / "lesion.png")
    overlay = np.asarray(Image.open(path))
    assert overlay.shape == (224, 224, 3)
    # The lesion outline is drawn in white on the boundary of the resized mask.
    assert (overlay[result.mask.astype(bool) & (overlay.min(axis=2) == 255)]).size > 0

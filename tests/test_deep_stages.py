"""Backbones cut into blocks: the blocks in order are the network's own forward pass."""

from __future__ import annotations

import pytest
import torch

from dlradiomics.features.deep.backbones import create_backbone
from dlradiomics.features.deep.stages import backbone_blocks, split_backbone
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

# Blocks per network, counted from the architectures' papers: ResNet-50 = stem + 3+4+6+3
# bottlenecks, ResNet-101 = stem + 3+4+23+3, VGG19 = 16 convolutions, GoogLeNet = stem + 9 Inception
# modules, Inception-v3 = stem + 11 Mixed modules, EfficientNet-Lite0 = stem + 16 MBConv blocks (head
# convolution joined to the last).
BLOCK_COUNTS = {"resnet50": 17, "resnet101": 34, "vgg19": 16, "googlenet": 10, "inception_v3": 12,
                "efficientnet_lite0": 17}


@pytest.mark.parametrize("name", sorted(BLOCK_COUNTS))
def test_front_then_back_is_the_networks_forward_at_every_cut(name):
    backbone = create_backbone(name, None)
    side = 80 if name == "inception_v3" else 64  # Inception-v3 needs at least 75 pixels
    batch = torch.randn(2, 3, side, side)
    blocks = backbone_blocks(backbone)
    assert len(blocks) == BLOCK_COUNTS[name]
    with torch.inference_mode():
        expected = backbone.model(batch)
        for n_last in (None, 0, 1, 2, len(blocks) - 1):
            front, back = split_backbone(backbone, n_last)
            torch.testing.assert_close(back(front(batch)), expected, rtol=0, atol=0)


def test_the_last_block_holds_the_grad_cam_layer_and_shares_the_networks_parameters():
    backbone = create_backbone("efficientnet_lite0", None)
    _, back = split_backbone(backbone, 1)
    assert any(module is backbone.target_layer for module in back.modules())
    back_parameters = {id(parameter) for parameter in back.parameters()}
    assert id(backbone.model._conv_head.weight) in back_parameters
    assert id(backbone.model._blocks[-1]._project_conv.weight) in back_parameters
    assert id(backbone.model._blocks[-2]._project_conv.weight) not in back_parameters


def test_out_of_range_cut_is_refused():
    backbone = create_backbone("googlenet", None)
    with pytest.raises(ValueError, match="0..10"):
        split_backbone(backbone, 11)

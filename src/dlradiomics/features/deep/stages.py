"""Every backbone as an ordered list of blocks, to split into a frozen front and a trainable back.

Fine-tuning only the last blocks of a network leaves everything before them unchanged; with batch
norm in eval mode and no random augmentation inside the network, the output of that frozen front
for an ROI is the same in every epoch and every fold. :func:`split_backbone` cuts a backbone
there, so the front's output can be computed once per ROI and cached
(:mod:`dlradiomics.features.deep.activations`) and training runs only the back: on a CPU, the
difference between hours and seconds.

Applying the blocks of :func:`backbone_blocks` in order, then :func:`global_pool`, is the
backbone's own forward pass (``tests/test_deep_stages.py`` checks it against each network).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dlradiomics.features.deep.backbones import Backbone


class _TransformInput(nn.Module):
    """GoogLeNet's and Inception-v3's ``transform_input`` step, which their ``forward`` runs first."""

    def __init__(self, model: nn.Module):
        super().__init__()
        # A plain reference (not a registered child): the step owns no parameters, and registering
        # the whole network here would put its parameters in the first block.
        object.__setattr__(self, "_model", model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._model._transform_input(x)


class _DropConnectBlock(nn.Module):
    """An EfficientNet MBConv block called with the depth-scaled drop-connect rate, as the package's loop does."""

    def __init__(self, block: nn.Module, drop_connect_rate: float):
        super().__init__()
        self.block = block
        self.drop_connect_rate = drop_connect_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, drop_connect_rate=self.drop_connect_rate)


class _Swish(nn.Module):
    """The EfficientNet package's activation (ReLU6 for Lite), applied as in its ``extract_features``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.activation = model._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x)


def _resnet_blocks(model: nn.Module) -> list[nn.Module]:
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    return [stem, *model.layer1, *model.layer2, *model.layer3, *model.layer4]


def _vgg_blocks(model: nn.Module) -> list[nn.Module]:
    # One block per convolution with its ReLU, and the max-pooling that follows it, if any.
    blocks: list[list[nn.Module]] = []
    for layer in model.features:
        if isinstance(layer, nn.Conv2d):
            blocks.append([layer])
        else:
            blocks[-1].append(layer)
    return [nn.Sequential(*layers) for layers in blocks]


def _googlenet_blocks(model: nn.Module) -> list[nn.Module]:
    stem = nn.Sequential(_TransformInput(model), model.conv1, model.maxpool1, model.conv2, model.conv3,
                         model.maxpool2)
    return [stem, model.inception3a, nn.Sequential(model.inception3b, model.maxpool3), model.inception4a,
            model.inception4b, model.inception4c, model.inception4d,
            nn.Sequential(model.inception4e, model.maxpool4), model.inception5a, model.inception5b]


def _inception_v3_blocks(model: nn.Module) -> list[nn.Module]:
    stem = nn.Sequential(_TransformInput(model), model.Conv2d_1a_3x3, model.Conv2d_2a_3x3, model.Conv2d_2b_3x3,
                         model.maxpool1, model.Conv2d_3b_1x1, model.Conv2d_4a_3x3, model.maxpool2)
    return [stem, model.Mixed_5b, model.Mixed_5c, model.Mixed_5d, model.Mixed_6a, model.Mixed_6b, model.Mixed_6c,
            model.Mixed_6d, model.Mixed_6e, model.Mixed_7a, model.Mixed_7b, model.Mixed_7c]


def _efficientnet_lite_blocks(model: nn.Module) -> list[nn.Module]:
    swish = _Swish(model)
    stem = nn.Sequential(model._conv_stem, model._bn0, swish)
    rate = model._global_params.drop_connect_rate or 0.0
    count = len(model._blocks)
    blocks = [_DropConnectBlock(block, rate * index / count) for index, block in enumerate(model._blocks)]
    # The 1x1 head convolution (320 -> 1280) joins the last MBConv block: on its own it is a
    # linear map of the last block's output, too small a unit to fine-tune alone.
    last = nn.Sequential(blocks.pop(), model._conv_head, model._bn1, swish)
    return [stem, *blocks, last]


_BLOCKS: dict[str, Callable[[nn.Module], list[nn.Module]]] = {
    "resnet50": _resnet_blocks,
    "resnet101": _resnet_blocks,
    "vgg19": _vgg_blocks,
    "googlenet": _googlenet_blocks,
    "inception_v3": _inception_v3_blocks,
    "efficientnet_lite0": _efficientnet_lite_blocks,
}


def backbone_blocks(backbone: Backbone) -> list[nn.Module]:
    """The backbone's blocks in forward order (they share the backbone's parameters).

    A block is the unit that ``n_last_blocks`` counts: a ResNet bottleneck, a VGG convolution, an
    Inception module, an EfficientNet MBConv block (the last one with the head convolution).

    Args:
        backbone: a backbone from :func:`~dlradiomics.features.deep.create_backbone`.

    Returns:
        Modules whose composition, followed by :func:`global_pool`, is ``backbone.model``.
    """
    if backbone.name not in _BLOCKS:
        raise ValueError(f"no block list for backbone {backbone.name!r}; known: {', '.join(sorted(_BLOCKS))}")
    return _BLOCKS[backbone.name](backbone.model)


def global_pool() -> nn.Module:
    """Global average pooling to the ``(N, embedding_dim)`` embedding, as every backbone ends."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


def split_backbone(backbone: Backbone, n_last_blocks: int | None) -> tuple[nn.Sequential, nn.Sequential]:
    """Cut a backbone into a front (kept frozen) and a back (the last blocks, then global pooling).

    Args:
        backbone: the backbone; both parts share its parameters (copy it first to keep it intact).
        n_last_blocks: how many of the last blocks go to the back; ``None`` puts the whole
            network there (end-to-end training, empty front); ``0`` leaves only the pooling.

    Returns:
        ``(front, back)``: ``back(front(x))`` equals ``backbone.model(x)``.
    """
    blocks = backbone_blocks(backbone)
    if n_last_blocks is None:
        n_last_blocks = len(blocks)
    if not 0 <= n_last_blocks <= len(blocks):
        raise ValueError(f"{backbone.name} has {len(blocks)} blocks; n_last_blocks must be 0..{len(blocks)} or None, "
                         f"got {n_last_blocks}")
    cut = len(blocks) - n_last_blocks
    return nn.Sequential(*blocks[:cut]), nn.Sequential(*blocks[cut:], global_pool())

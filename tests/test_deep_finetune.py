"""Optional fine-tuning of the last convolutional block."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlradiomics.features.deep.backbones import create_backbone
from dlradiomics.features.deep.finetune import fine_tune_last_block
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_only_the_last_block_and_the_head_change_and_the_original_is_untouched():
    backbone = create_backbone("resnet50", None)
    original = {name: tensor.clone() for name, tensor in backbone.model.state_dict().items()}
    rng = np.random.default_rng(0)
    inputs = torch.from_numpy(rng.normal(size=(6, 3, 64, 64)).astype(np.float32))
    labels = np.array([0, 1, 0, 1, 0, 1])
    tuned, head = fine_tune_last_block(backbone, inputs, labels, epochs=2, batch_size=3, learning_rate=0.01,
                                       device="cpu")

    changed = {name for name, tensor in tuned.model.state_dict().items()
               if tensor.is_floating_point() and not torch.equal(tensor, original[name])}
    assert changed and all(name.startswith("layer4.") for name in changed)
    assert any(name.startswith("layer4.2.conv") for name in changed)
    for name, tensor in backbone.model.state_dict().items():
        assert torch.equal(tensor, original[name]), f"{name} of the input backbone was modified"
    assert not any(parameter.requires_grad for parameter in tuned.model.parameters())
    assert tuned.weights_id.startswith("random-seed0-finetuned-")
    assert head.weight.shape == (2, 2048)

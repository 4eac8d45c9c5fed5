"""The backbone registry: shapes, frozen parameters, real ImageNet weights, offline errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from dlradiomics.features.deep.backbones import (
    BackboneWeightsError,
    available_backbones,
    create_backbone,
    imagenet_classifier,
)
from dlradiomics.features.deep.preprocessing import CropSettings, prepare_roi
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.mark.parametrize("name", ["resnet50", "resnet101", "vgg19", "googlenet", "inception_v3", "efficientnet_lite0"])
def test_every_backbone_embeds_to_its_declared_size_and_is_frozen(name):
    backbone = create_backbone(name, weights=None)
    batch = torch.randn(2, 3, backbone.input_size, backbone.input_size)
    with torch.inference_mode():
        embedding = backbone.model(batch)
    assert embedding.shape == (2, backbone.embedding_dim)
    assert not any(parameter.requires_grad for parameter in backbone.model.parameters())
    assert not backbone.model.training
    assert any(module is backbone.target_layer for module in backbone.model.modules())


def test_declared_sizes_match_the_paper_and_the_architectures():
    assert create_backbone("resnet50", None).embedding_dim == 2048
    assert create_backbone("inception_v3", None).input_size == 299
    assert create_backbone("googlenet", None).input_size == 224
    assert set(available_backbones()) >= {"resnet50", "resnet101", "vgg19", "googlenet", "inception_v3",
                                          "efficientnet_lite0"}


def test_the_torch_free_list_of_names_is_the_registry():
    from dlradiomics.features.defaults import BACKBONES, CNN_BASELINES

    assert list(BACKBONES) == available_backbones()
    assert set(CNN_BASELINES) <= set(BACKBONES)


def test_random_weights_are_reproducible_from_the_seed_and_differ_between_seeds():
    first = create_backbone("efficientnet_lite0", None, seed=3)
    again = create_backbone("efficientnet_lite0", None, seed=3)
    other = create_backbone("efficientnet_lite0", None, seed=4)
    weight = lambda backbone: backbone.model._conv_stem.weight  # noqa: E731
    assert torch.equal(weight(first), weight(again))
    assert not torch.equal(weight(first), weight(other))
    assert first.weights_id == "random-seed3" and other.weights_id == "random-seed4"


def _whole_image_input(rgb: np.ndarray, backbone) -> torch.Tensor:
    grey = rgb.mean(axis=2)
    full_mask = np.ones(grey.shape, dtype=np.uint8)
    prepared = prepare_roi(grey, full_mask, input_size=backbone.input_size, mean=backbone.mean,
                           std=backbone.std, settings=CropSettings(margin=0.0))
    return prepared.tensor


@pytest.mark.parametrize(("picture", "accepted_classes"), [
    (data.chelsea, {281, 282, 285}),  # tabby, tiger cat, Egyptian cat
    (data.coffee, {967}),  # espresso
])
def test_efficientnet_lite0_package_weights_classify_imagenet_pictures(picture, accepted_classes):
    backbone = create_backbone("efficientnet_lite0", "imagenet")
    classifier = imagenet_classifier("efficientnet_lite0", "imagenet")
    rgb = picture().astype(np.float32) / 255.0
    resized = torch.nn.functional.interpolate(torch.from_numpy(rgb).permute(2, 0, 1)[None], size=(224, 224),
                                              mode="bilinear", antialias=True)
    normalised = (resized - torch.tensor(backbone.mean)[:, None, None]) / torch.tensor(backbone.std)[:, None, None]
    with torch.inference_mode():
        top_class = int(classifier(normalised).argmax())
    assert top_class in accepted_classes


def test_imagenet_embedding_feeds_the_original_classifier_layer():
    # The registry's trunk plus the package's own fully connected layer must reproduce the
    # package network's logits: the classifier strip removed nothing but the last layer.
    backbone = create_backbone("efficientnet_lite0", "imagenet")
    classifier = imagenet_classifier("efficientnet_lite0", "imagenet")
    batch = _whole_image_input(data.coffee().astype(np.float32), backbone)[None]
    with torch.inference_mode():
        through_trunk = classifier._fc(backbone.model(batch))
        direct = classifier(batch)
    torch.testing.assert_close(through_trunk, direct)
    assert backbone.weights_id.startswith("imagenet")


def test_local_weights_file_is_loaded_and_named_by_its_hash(tmp_path):
    source = create_backbone("efficientnet_lite0", None, seed=7)
    path = tmp_path / "lite0.pth"
    torch.save(source.model.state_dict(), path)
    loaded = create_backbone("efficientnet_lite0", path, seed=0)
    assert torch.equal(loaded.model._conv_stem.weight, source.model._conv_stem.weight)
    assert loaded.weights_id.startswith("file-")


def test_weights_of_another_architecture_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "googlenet.pth"
    torch.save(create_backbone("googlenet", None).model.state_dict(), path)
    with pytest.raises(BackboneWeightsError, match="googlenet.pth"):
        create_backbone("efficientnet_lite0", path)


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(ValueError, match="resnet50"):
        create_backbone("alexnet", None)


def test_torchvision_checkpoint_with_auxiliary_heads_loads_into_the_trunk(tmp_path):
    import torchvision

    from dlradiomics.features.deep.weights import WeightStore

    # A stand-in for torchvision's GoogLeNet checkpoint, auxiliary heads included as in the real one.
    torch.manual_seed(11)
    full_classifier = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    store = WeightStore(tmp_path)
    torch.save(full_classifier.state_dict(), store.path_of("googlenet"))
    store.record("googlenet", store.path_of("googlenet"), source="test")

    backbone = create_backbone("googlenet", "imagenet", weights_dir=tmp_path)
    assert torch.equal(backbone.model.conv1.conv.weight, full_classifier.conv1.conv.weight)
    assert backbone.weights_id == "imagenet-imagenet1k_v1"


def test_listing_the_backbones_imports_no_torchvision():
    # torchvision (about 2 CPU-seconds) is imported to build a torchvision backbone, not to check a name.
    import subprocess
    import sys

    code = ("import sys; from dlradiomics.features.deep.backbones import available_backbones; "
            "names = available_backbones(); print('resnet50' in names, 'torchvision' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "False"]

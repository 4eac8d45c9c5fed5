"""What names a backbone's embeddings in the store, known without building the network (or importing torch).

An embedding's store key holds the backbone's name, its weights id, its input size and its
normalisation (`dlradiomics.features.deep.embeddings.roi_cache_key`); all of them follow from the
registry name and the weights asked for. :func:`backbone_identity` gives them, so that a run whose
embeddings are all stored reads them back without building the backbone (seconds of torch and
torchvision imports). `tests/test_deep_embeddings.py` keeps these values equal to what
:func:`~dlradiomics.features.deep.backbones.create_backbone` builds.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite0's TensorFlow checkpoints expect (pixel - 127) / 128 (see backbones.py).
TF_LITE_MEAN = (127.0 / 255.0,) * 3
TF_LITE_STD = (128.0 / 255.0,) * 3

# name -> (embedding_dim, input_size, mean, std, ImageNet weights id), as the registry builds them.
_SHAPES = {
    "resnet50": (2048, 224, IMAGENET_MEAN, IMAGENET_STD, "imagenet-imagenet1k_v1"),
    "resnet101": (2048, 224, IMAGENET_MEAN, IMAGENET_STD, "imagenet-imagenet1k_v1"),
    "vgg19": (512, 224, IMAGENET_MEAN, IMAGENET_STD, "imagenet-imagenet1k_v1"),
    "googlenet": (1024, 224, IMAGENET_MEAN, IMAGENET_STD, "imagenet-imagenet1k_v1"),
    "inception_v3": (2048, 299, IMAGENET_MEAN, IMAGENET_STD, "imagenet-imagenet1k_v1"),
    "efficientnet_lite0": (1280, 224, TF_LITE_MEAN, TF_LITE_STD, "imagenet-lite0-57934424"),
}


@dataclass(frozen=True)
class BackboneIdentity:
    """The fields of a `Backbone` that name its embeddings (a `Backbone` has the same ones).

    Attributes:
        name: registry name.
        weights_id: short, path-safe identifier of the weights.
        embedding_dim: length of the embedding.
        input_size: side of the square input in pixels.
        mean: per-channel normalisation mean.
        std: per-channel normalisation standard deviation.
    """

    name: str
    weights_id: str
    embedding_dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def backbone_identity(name: str, weights: str | os.PathLike[str] | None = "imagenet", *,
                      seed: int = 0) -> BackboneIdentity:
    """The identity of the backbone `create_backbone(name, weights, seed=seed)` would build.

    Args:
        name: registry name.
        weights: ``"imagenet"``, a path to a state dict file, or ``None``/``"none"`` (random).
        seed: seed of random weights.

    Raises:
        ValueError: unknown backbone name.
        OSError: a weights file cannot be read.
    """
    if name not in _SHAPES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(_SHAPES))}")
    embedding_dim, input_size, mean, std, imagenet_id = _SHAPES[name]
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        weights_id = f"random-seed{seed}"
    elif isinstance(weights, str) and weights.lower() == "imagenet":
        weights_id = imagenet_id
    else:
        weights_id = f"file-{sha256_prefix(Path(weights).expanduser().resolve())}"
    return BackboneIdentity(name=name, weights_id=weights_id, embedding_dim=embedding_dim, input_size=input_size,
                            mean=mean, std=std)


def sha256_prefix(path: Path, length: int = 12) -> str:
    """The first ``length`` hex digits of a file's SHA-256 (a local weights file's id)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]

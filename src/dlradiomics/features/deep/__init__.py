"""Deep features: ImageNet CNN backbones, ROI crops, cached embeddings, the transfer-learned head,
CNNs trained inside the training folds (baselines and fine-tuned features), Grad-CAM, and the
checked store of ImageNet weights.

Public API: :func:`create_backbone`, :class:`Backbone`, :func:`roi_crop`, :func:`prepare_roi`,
:func:`compute_embeddings`, :class:`EmbeddingHeadClassifier` (alias :class:`FrozenBackboneHead`),
:func:`deep_feature_pipeline`, :class:`CnnClassifier`, :class:`FineTunedEmbeddings`,
:func:`split_backbone`, :func:`grad_cam_roi`, :class:`WeightStore`, :func:`download_weights`.
"""

from importlib import import_module
from typing import Any

from dlradiomics.features.defaults import CNN_BASELINES, DEFAULT_BACKBONE

# Each public name and the module that holds it, imported on first use: most of them import torch,
# and a study whose embeddings are all in the store (or a command that reads only the weights
# store) never needs it.
_MODULE_OF = {
    "Backbone": "backbones", "available_backbones": "backbones", "create_backbone": "backbones",
    "CnnClassifier": "cnn", "FineTunedEmbeddings": "cnn",
    "compute_embeddings": "embeddings", "deep_column_names": "embeddings", "embedding_failures": "embeddings",
    "GradCamResult": "gradcam", "grad_cam_roi": "gradcam", "lesion_mass_fraction": "gradcam",
    "save_overlay": "gradcam",
    "EmbeddingHeadClassifier": "head", "FrozenBackboneHead": "head", "train_head_through_backbone": "head",
    "CropSettings": "preprocessing", "PreparedRoi": "preprocessing", "prepare_roi": "preprocessing",
    "roi_crop": "preprocessing", "save_crop_png": "preprocessing",
    "deep_feature_pipeline": "reduction",
    "backbone_blocks": "stages", "split_backbone": "stages",
    "WEIGHTS_ENV": "weights", "BackboneWeightsError": "weights", "WeightStore": "weights",
    "add_weights_file": "weights", "download_weights": "weights", "downloadable_backbones": "weights",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CNN_BASELINES",
    "DEFAULT_BACKBONE",
    "WEIGHTS_ENV",
    "Backbone",
    "BackboneWeightsError",
    "CnnClassifier",
    "CropSettings",
    "EmbeddingHeadClassifier",
    "FineTunedEmbeddings",
    "FrozenBackboneHead",
    "GradCamResult",
    "PreparedRoi",
    "WeightStore",
    "add_weights_file",
    "available_backbones",
    "backbone_blocks",
    "compute_embeddings",
    "create_backbone",
    "deep_column_names",
    "deep_feature_pipeline",
    "download_weights",
    "downloadable_backbones",
    "embedding_failures",
    "grad_cam_roi",
    "lesion_mass_fraction",
    "prepare_roi",
    "roi_crop",
    "save_crop_png",
    "save_overlay",
    "split_backbone",
    "train_head_through_backbone",
]

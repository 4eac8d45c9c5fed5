"""Deep features: ImageNet CNN backbones, ROI crops, cached embeddings, the transfer-learned head,
CNNs trained inside the training folds (baselines and fine-tuned features), Grad-CAM, and the
checked store of ImageNet weights.

Public API: :func:`create_backbone`, :class:`Backbone`, :func:`roi_crop`, :func:`prepare_roi`,
:func:`compute_embeddings`, :class:`EmbeddingHeadClassifier` (alias :class:`FrozenBackboneHead`),
:func:`deep_feature_pipeline`, :class:`CnnClassifier`, :class:`FineTunedEmbeddings`,
:func:`split_backbone`, :func:`grad_cam_roi`, :class:`WeightStore`, :func:`download_weights`.
"""

from dlradiomics.features.defaults import CNN_BASELINES
from dlradiomics.features.deep.backbones import DEFAULT_BACKBONE, Backbone, available_backbones, create_backbone
from dlradiomics.features.deep.cnn import CnnClassifier, FineTunedEmbeddings
from dlradiomics.features.deep.embeddings import compute_embeddings, deep_column_names, embedding_failures
from dlradiomics.features.deep.gradcam import GradCamResult, grad_cam_roi, lesion_mass_fraction, save_overlay
from dlradiomics.features.deep.head import EmbeddingHeadClassifier, FrozenBackboneHead, train_head_through_backbone
from dlradiomics.features.deep.preprocessing import CropSettings, PreparedRoi, prepare_roi, roi_crop, save_crop_png
from dlradiomics.features.deep.reduction import deep_feature_pipeline
from dlradiomics.features.deep.stages import backbone_blocks, split_backbone
from dlradiomics.features.deep.weights import (
    WEIGHTS_ENV,
    BackboneWeightsError,
    WeightStore,
    add_weights_file,
    download_weights,
    downloadable_backbones,
)

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

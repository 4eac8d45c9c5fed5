"""Deep features: ImageNet CNN backbones, ROI crops, cached embeddings, the transfer-learned head,
Grad-CAM and the paper's CNN baselines.

Public API: :func:`create_backbone`, :class:`Backbone`, :func:`roi_crop`, :func:`prepare_roi`,
:func:`compute_embeddings`, :class:`EmbeddingHeadClassifier` (alias :class:`FrozenBackboneHead`),
:func:`deep_feature_pipeline`, :func:`grad_cam_roi`, :func:`cnn_baseline_oof`,
:func:`fine_tune_last_block` (optional, beyond the paper).
"""

from dlradiomics.features.deep.backbones import (
    DEFAULT_BACKBONE,
    Backbone,
    BackboneWeightsError,
    available_backbones,
    create_backbone,
)
from dlradiomics.features.deep.baselines import PAPER_BASELINES, cnn_baseline_oof, out_of_fold_head_predictions
from dlradiomics.features.deep.embeddings import compute_embeddings, deep_column_names, embedding_failures
from dlradiomics.features.deep.finetune import fine_tune_last_block
from dlradiomics.features.deep.gradcam import GradCamResult, grad_cam_roi, lesion_mass_fraction, save_overlay
from dlradiomics.features.deep.head import EmbeddingHeadClassifier, FrozenBackboneHead, train_head_through_backbone
from dlradiomics.features.deep.preprocessing import CropSettings, PreparedRoi, prepare_roi, roi_crop, save_crop_png
from dlradiomics.features.deep.reduction import deep_feature_pipeline

__all__ = [
    "DEFAULT_BACKBONE",
    "PAPER_BASELINES",
    "GradCamResult",
    "Backbone",
    "BackboneWeightsError",
    "CropSettings",
    "EmbeddingHeadClassifier",
    "FrozenBackboneHead",
    "PreparedRoi",
    "available_backbones",
    "cnn_baseline_oof",
    "deep_feature_pipeline",
    "embedding_failures",
    "fine_tune_last_block",
    "grad_cam_roi",
    "lesion_mass_fraction",
    "out_of_fold_head_predictions",
    "save_overlay",
    "compute_embeddings",
    "create_backbone",
    "deep_column_names",
    "prepare_roi",
    "roi_crop",
    "save_crop_png",
    "train_head_through_backbone",
]

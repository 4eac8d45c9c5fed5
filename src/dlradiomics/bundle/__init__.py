"""Model bundles: a fitted model as a folder that is data, never code, and predicts feature tables.

Public API: `save_bundle`, `load_bundle`, `ModelBundle`, `BundleError`, and the records of the
training data a bundle carries (`TrainingIntensityProfile`, `FeatureRange`).
The study layer (`dlradiomics.study.prediction.predict_manifest`) turns a manifest into tables.
"""

from dlradiomics.bundle.errors import BundleError
from dlradiomics.bundle.metadata import (
    BUNDLE_FORMAT_VERSION,
    METADATA_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
    BundleMetadata,
)
from dlradiomics.bundle.model_bundle import ModelBundle, load_bundle, save_bundle
from dlradiomics.bundle.profiles import FeatureRange, TrainingIntensityProfile

__all__ = [
    "BUNDLE_FORMAT_VERSION",
    "BundleError",
    "BundleMetadata",
    "FeatureRange",
    "TrainingIntensityProfile",
    "METADATA_FILE",
    "MODEL_FILE",
    "ModelBundle",
    "WEIGHTS_FILE",
    "load_bundle",
    "save_bundle",
]

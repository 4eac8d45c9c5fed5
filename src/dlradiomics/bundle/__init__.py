"""Model bundles: a fitted model as a folder that is data, never code, and predicts feature tables.

Public API: `save_bundle`, `load_bundle`, `ModelBundle`, `BundleError`, the records of the
training data a bundle carries (`TrainingIntensityProfile`, `FeatureRange`), and
`classes_beyond_allowlist` (the classes of a model a loader must name to trust).
The study layer (`dlradiomics.study.prediction.predict_manifest`) turns a manifest into tables.
"""

from dlradiomics.bundle.audit import classes_beyond_allowlist
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
    "classes_beyond_allowlist",
    "load_bundle",
    "save_bundle",
]

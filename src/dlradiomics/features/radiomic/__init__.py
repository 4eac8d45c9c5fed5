"""Radiomic features: settings (``params``) and families (``families``), one 2D ROI (``roi``), one
3D lesion volume (``volume``), a whole cohort through the feature store (``extraction``) and the
files it writes (``outputs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlradiomics.features.radiomic.extraction import (
    FAILURE_COLUMNS,
    META_COLUMNS,
    PROVENANCE_COLUMNS,
    STORE_NAMESPACE,
    ExtractionResult,
    compute_roi_features,
    extract_radiomic_features,
    library_versions,
)
from dlradiomics.features.radiomic.families import (
    DIMENSIONS,
    NORMALISATIONS,
    FamilySettingsError,
    FeatureFamilies,
    LaplacianOfGaussian,
    PeritumoralRing,
    Wavelet,
)
from dlradiomics.features.radiomic.names import is_radiomic_feature_name, radiomic_feature_columns
from dlradiomics.features.radiomic.outputs import write_extraction_outputs
from dlradiomics.features.radiomic.params import (
    DEFAULT_PARAMS_PATH,
    EXTRACTION_CONVENTION,
    FAMILIES_SECTION,
    load_radiomics_params,
    merge_radiomics_params,
    resolve_radiomics_params,
    settings_sha256,
)

if TYPE_CHECKING:
    from dlradiomics.features.radiomic.roi import RadiomicFeatureError, create_extractor, extract_roi_features
    from dlradiomics.features.radiomic.volume import create_volume_extractor, extract_volume_features, volume_settings

# What needs PyRadiomics and SimpleITK is imported on first use: a fully cached extraction (or a
# prediction from stored features) never computes a feature and skips their import.
_FROM_ROI = ("RadiomicFeatureError", "create_extractor", "extract_roi_features")
_FROM_VOLUME = ("create_volume_extractor", "extract_volume_features", "volume_settings")


def __getattr__(name: str) -> Any:
    if name in _FROM_ROI:
        from dlradiomics.features.radiomic import roi as module
    elif name in _FROM_VOLUME:
        from dlradiomics.features.radiomic import volume as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_PARAMS_PATH",
    "DIMENSIONS",
    "EXTRACTION_CONVENTION",
    "FAILURE_COLUMNS",
    "FAMILIES_SECTION",
    "META_COLUMNS",
    "NORMALISATIONS",
    "PROVENANCE_COLUMNS",
    "STORE_NAMESPACE",
    "ExtractionResult",
    "FamilySettingsError",
    "FeatureFamilies",
    "LaplacianOfGaussian",
    "PeritumoralRing",
    "RadiomicFeatureError",
    "Wavelet",
    "compute_roi_features",
    "create_extractor",
    "create_volume_extractor",
    "extract_radiomic_features",
    "extract_roi_features",
    "extract_volume_features",
    "is_radiomic_feature_name",
    "library_versions",
    "load_radiomics_params",
    "merge_radiomics_params",
    "radiomic_feature_columns",
    "resolve_radiomics_params",
    "settings_sha256",
    "volume_settings",
    "write_extraction_outputs",
]

"""PyRadiomics features: settings (``params``), one ROI (``roi``); the cohort-scale driver lives in
:mod:`dlradiomics.extraction` and is re-exported here."""

from __future__ import annotations

from typing import Any

from dlradiomics.features.radiomic.params import (
    DEFAULT_PARAMS_PATH,
    load_radiomics_params,
    merge_radiomics_params,
    resolve_radiomics_params,
    settings_sha256,
)
from dlradiomics.features.radiomic.roi import (
    RadiomicFeatureError,
    create_extractor,
    extract_roi_features,
    is_radiomic_feature_name,
    radiomic_feature_columns,
)

_FROM_EXTRACTION = ("extract_radiomic_features", "ExtractionResult")


def __getattr__(name: str) -> Any:
    # Imported on first use: dlradiomics.extraction imports this package, so an eager import here
    # would be circular.
    if name in _FROM_EXTRACTION:
        from dlradiomics import extraction

        return getattr(extraction, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_PARAMS_PATH",
    "ExtractionResult",
    "RadiomicFeatureError",
    "create_extractor",
    "extract_radiomic_features",
    "extract_roi_features",
    "is_radiomic_feature_name",
    "load_radiomics_params",
    "merge_radiomics_params",
    "radiomic_feature_columns",
    "resolve_radiomics_params",
    "settings_sha256",
]

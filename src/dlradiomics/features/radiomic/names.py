"""Radiomic feature names and the settings' cache keys, without PyRadiomics or SimpleITK.

A fully cached extraction reads its features from the store and never computes one; this module
lets it recognise feature columns and parse the feature families without importing PyRadiomics
(whose import, with SimpleITK's, costs more than the rest of a cached run).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from dlradiomics.features.radiomic.families import FeatureFamilies

# PyRadiomics' feature classes (`radiomics.getFeatureClasses()`, kept equal by
# tests/test_radiomic_roi.py), longest first so that "shape2D" is not read as "shape".
PYRADIOMICS_FEATURE_CLASSES = ("firstorder", "glcm", "gldm", "glrlm", "glszm", "ngtdm", "shape", "shape2D")
PERITUMORAL_PREFIX = "peri_"
# PyRadiomics names every feature "{image type}_{feature class}_{feature}", e.g.
# "original_glcm_Contrast" or "wavelet-LH_firstorder_Mean"; the peritumoral ring's features carry
# the prefix "peri_"; diagnostics start with "diagnostics_".
_FEATURE_NAME = re.compile(
    rf"^({PERITUMORAL_PREFIX})?[A-Za-z0-9.\-]+_("
    + "|".join(sorted(PYRADIOMICS_FEATURE_CLASSES, key=len, reverse=True))
    + r")_\w+$"
)

_families: dict[str, FeatureFamilies] = {}


def is_radiomic_feature_name(name: str) -> bool:
    """Whether ``name`` has the form of a radiomic feature name (``original_glcm_Contrast``)."""
    return bool(_FEATURE_NAME.match(str(name)))


def radiomic_feature_columns(frame: pd.DataFrame) -> list[str]:
    """The radiomic feature columns of ``frame``, in table order (meta and provenance excluded).

    Args:
        frame: a radiomic feature table.

    Returns:
        Column names such as ``original_firstorder_Mean`` or ``peri_original_glcm_Contrast``.
    """
    return [column for column in frame.columns if is_radiomic_feature_name(column)]


def canonical_settings(params: Mapping[str, Any]) -> str:
    """The settings as canonical JSON: one key per distinct parameter mapping (caches of extractors)."""
    return json.dumps(params, sort_keys=True, default=str)


def feature_families(params: Mapping[str, Any]) -> FeatureFamilies:
    """The :class:`FeatureFamilies` of a parameter mapping, parsed once per process and settings."""
    canonical = canonical_settings(params)
    if canonical not in _families:
        _families[canonical] = FeatureFamilies.from_params(params)
    return _families[canonical]

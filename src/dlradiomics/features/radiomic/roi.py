"""PyRadiomics features of one 2D region of interest."""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
import radiomics
from radiomics.featureextractor import RadiomicsFeatureExtractor

from dlradiomics.features.radiomic.params import load_radiomics_params

if TYPE_CHECKING:
    from dlradiomics.io import RoiImage

# PyRadiomics logs a line per feature class at INFO; across a cohort that drowns real warnings.
radiomics.setVerbosity(logging.ERROR)

# PyRadiomics names every feature "{image type}_{feature class}_{feature}", e.g.
# "original_glcm_Contrast" or "wavelet-LLH_firstorder_Mean"; diagnostics start with "diagnostics_".
_FEATURE_NAME = re.compile(
    r"^[A-Za-z0-9.\-]+_(" + "|".join(sorted(radiomics.getFeatureClasses(), key=len, reverse=True)) + r")_\w+$"
)


class RadiomicFeatureError(ValueError):
    """PyRadiomics could not give finite features for an ROI; the message names image and mask."""


def is_radiomic_feature_name(name: str) -> bool:
    """Whether ``name`` has the form of a PyRadiomics feature name (``original_glcm_Contrast``)."""
    return bool(_FEATURE_NAME.match(str(name)))


def radiomic_feature_columns(frame: pd.DataFrame) -> list[str]:
    """The PyRadiomics feature columns of ``frame``, in table order (meta and provenance excluded).

    Args:
        frame: a radiomic feature table.

    Returns:
        Column names such as ``original_firstorder_Mean``.
    """
    return [column for column in frame.columns if is_radiomic_feature_name(column)]


# One extractor per settings per process, keyed by the settings' canonical JSON.
_extractors: dict[str, RadiomicsFeatureExtractor] = {}


def create_extractor(params: Mapping[str, Any]) -> RadiomicsFeatureExtractor:
    """A PyRadiomics extractor for ``params``, built once per process and settings.

    Args:
        params: a complete PyRadiomics parameter mapping (PyRadiomics validates it).

    Returns:
        The configured ``RadiomicsFeatureExtractor``.

    Raises:
        ValueError: PyRadiomics' schema rejects the settings (the message says which key).
    """
    # Building an extractor validates the settings against PyRadiomics' schema, which costs more
    # than extracting a small ROI; cache it by the settings' content.
    canonical = json.dumps(params, sort_keys=True, default=str)
    if canonical not in _extractors:
        # A deep copy: PyRadiomics keeps the mapping, and the caller's dict may change later.
        try:
            _extractors[canonical] = RadiomicsFeatureExtractor(copy.deepcopy(dict(params)))
        except RuntimeError as error:  # pykwalify's SchemaError, which PyRadiomics validates with
            raise ValueError(f"invalid PyRadiomics settings: {getattr(error, 'msg', error)}") from error
    return _extractors[canonical]


def extract_roi_features(roi: RoiImage, params: Mapping[str, Any] | None = None) -> dict[str, float]:
    """PyRadiomics features of one ROI, under PyRadiomics' own feature names.

    Args:
        roi: the image and its 0/1 mask (``RoiImage.to_sitk()`` gives what PyRadiomics reads).
        params: a complete PyRadiomics parameter mapping; ``None`` uses the packaged 2D defaults.

    Returns:
        Feature name -> value, in PyRadiomics' order, diagnostics left out.

    Raises:
        RadiomicFeatureError: the ROI is flat (one intensity), PyRadiomics rejected it (for example
            an empty or one-pixel mask) or gave a non-finite value; the message names the image,
            the mask and the problem.
    """
    params = load_radiomics_params() if params is None else params
    extractor = create_extractor(params)
    where = f"image {roi.image_path}, mask {roi.mask_path}"
    lesion_values = roi.image[roi.mask > 0]
    if lesion_values.size > 1 and lesion_values.min() == lesion_values.max():
        # PyRadiomics returns finite placeholders for a flat ROI (GLCM correlation 1, Imc 0) or NaN,
        # depending on version; either way the texture features describe nothing, so refuse it.
        raise RadiomicFeatureError(
            f"flat ROI in {where}: all {lesion_values.size} lesion pixels have intensity "
            f"{lesion_values[0]:g}, so texture features are undefined"
        )
    image, mask = roi.to_sitk()
    try:
        result = extractor.execute(image, mask, label=int(params.get("setting", {}).get("label", 1)))
    except (ValueError, RuntimeError, IndexError) as error:
        raise RadiomicFeatureError(f"PyRadiomics failed on {where}: {error}") from error
    features = {name: float(value) for name, value in result.items() if is_radiomic_feature_name(name)}
    if not features:
        raise RadiomicFeatureError(f"PyRadiomics returned no features for {where}; check the feature classes")
    not_finite = [name for name, value in features.items() if not math.isfinite(value)]
    if not_finite:
        raise RadiomicFeatureError(
            f"PyRadiomics gave non-finite values for {len(not_finite)} feature(s) of {where} "
            f"(a flat or tiny ROI?): {', '.join(not_finite[:5])}{' ...' if len(not_finite) > 5 else ''}"
        )
    return features

"""PyRadiomics features of one 2D region of interest, the IBSI way.

PyRadiomics computes its texture matrices differently for a native 2D image than for the same
pixels given as a one-slice 3D volume, and only the one-slice volume gives the IBSI values (GLCM,
GLRLM, GLSZM, GLDM and NGTDM of the IBSI digital phantom, "2D" configuration; docs/ibsi.md and
tests/test_ibsi_phantom.py). So every image handed to PyRadiomics here is a one-slice volume with
the pixel spacing of its file.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import radiomics
import SimpleITK as sitk
from radiomics.featureextractor import RadiomicsFeatureExtractor

from dlradiomics.features.radiomic.filters import FilterError, filtered_images
from dlradiomics.features.radiomic.names import (
    PERITUMORAL_PREFIX,
    canonical_settings,
    feature_families,
    is_radiomic_feature_name,
)
from dlradiomics.features.radiomic.normalisation import NormalisationError, normalise_intensities
from dlradiomics.features.radiomic.params import load_radiomics_params, pyradiomics_params
from dlradiomics.features.radiomic.ring import ring_for

if TYPE_CHECKING:
    from dlradiomics.io import RoiImage

# PyRadiomics logs a line per feature class at INFO; across a cohort that drowns real warnings.
radiomics.setVerbosity(logging.ERROR)
# PyRadiomics validates settings with pykwalify, which logs every schema error at ERROR before
# raising; the ValueError raised below already names the key, so the log would only repeat it
# above the user's one-line message.
logging.getLogger("pykwalify").setLevel(logging.CRITICAL)

_ORIGINAL = "original"


class RadiomicFeatureError(ValueError):
    """PyRadiomics could not give finite features for an ROI; the message names image and mask."""


# One extractor per settings per process, keyed by the settings' canonical JSON.
_extractors: dict[str, RadiomicsFeatureExtractor] = {}


def _refuse_pyradiomics_filters(params: Mapping[str, Any]) -> None:
    image_types = set((params.get("imageType") or {"Original": {}}).keys())
    others = sorted(image_types - {"Original"})
    if others:
        raise ValueError(
            f"PyRadiomics image type(s) {others} are not used on 2D ROIs: PyRadiomics filters a one-slice "
            "volume in 3D (its LoG refuses it). Ask for 2D filtered images in the 'dlradiomics' section "
            "instead, e.g. dlradiomics: {log: {sigmas: [1, 2, 4]}, wavelet: {name: coif1}}"
        )


def create_extractor(
    params: Mapping[str, Any], *, shape: bool = True, bin_width: float | None = None
) -> RadiomicsFeatureExtractor:
    """A PyRadiomics extractor for ``params``, built once per process and settings.

    Args:
        params: a complete parameter mapping (PyRadiomics validates its part; the
            ``dlradiomics`` section is ours and is validated here).
        shape: keep the shape classes; ``False`` gives the extractor used for filtered images and
            the peritumoral ring, whose shape would only repeat the lesion's.
        bin_width: a bin width replacing the settings' (a filtered image family's own).

    Returns:
        The configured ``RadiomicsFeatureExtractor``.

    Raises:
        ValueError: PyRadiomics' schema rejects the settings (the message says which key), the
            ``dlradiomics`` section is invalid, or a PyRadiomics image type other than Original
            is asked for.
    """
    # Building an extractor validates the settings against PyRadiomics' schema, which costs more
    # than extracting a small ROI; cache it by the settings' content.
    canonical = canonical_settings(params) + f"|shape={shape}|bin_width={bin_width}"
    if canonical not in _extractors:
        feature_families(params)
        settings = pyradiomics_params(params)
        _refuse_pyradiomics_filters(settings)
        if not shape:
            classes = settings.get("featureClass") or {}
            settings = {**settings, "featureClass": {k: v for k, v in classes.items() if not k.startswith("shape")}}
        if bin_width is not None:
            settings = {**settings, "setting": {**(settings.get("setting") or {}), "binWidth": bin_width}}
        # A deep copy: PyRadiomics keeps the mapping, and the caller's dict may change later.
        try:
            _extractors[canonical] = RadiomicsFeatureExtractor(copy.deepcopy(dict(settings)))
        except RuntimeError as error:  # pykwalify's SchemaError, which PyRadiomics validates with
            raise ValueError(f"invalid PyRadiomics settings: {getattr(error, 'msg', error)}") from error
    return _extractors[canonical]


def one_slice_volume(array: np.ndarray, spacing: tuple[float, float]) -> sitk.Image:
    """A 2D array as a SimpleITK volume of one slice, with the in-plane spacing (row, col).

    The slice axis gets spacing 1, so that PyRadiomics' voxel volume (total energy) is the pixel
    area, as for a 2D image.
    """
    volume = sitk.GetImageFromArray(np.ascontiguousarray(array)[np.newaxis])
    volume.SetSpacing((float(spacing[1]), float(spacing[0]), 1.0))
    return volume


def _mask_bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    """The smallest (rows, cols) window holding every mask pixel; the whole array if there is none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return slice(None), slice(None)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _execute(extractor: RadiomicsFeatureExtractor, image: np.ndarray, mask: np.ndarray,
             spacing: tuple[float, float], where: str) -> dict[str, float]:
    # PyRadiomics crops to the mask's bounding box itself (no padding without resampling, and
    # filtered images arrive filtered already); cropping first gives the same features without
    # its label statistics, mask checks and copies running over the whole image.
    window = _mask_bounding_box(mask)
    image, mask = image[window], mask[window]
    try:
        # io's masks are 0/1 whatever the file's labels were, so the lesion is label 1.
        result = extractor.execute(one_slice_volume(image, spacing), one_slice_volume(mask, spacing), label=1)
    except (ValueError, RuntimeError, IndexError) as error:
        raise RadiomicFeatureError(f"PyRadiomics failed on {where}: {error}") from error
    return {name: float(value) for name, value in result.items() if is_radiomic_feature_name(name)}


def refuse_flat(values: np.ndarray, what: str, where: str) -> None:
    """Refuse an ROI (or ring) whose pixels all have one intensity: its texture is undefined.

    Raises:
        RadiomicFeatureError: naming ``what`` and ``where``.
    """
    if values.size > 1 and values.min() == values.max():
        # PyRadiomics returns finite placeholders for a flat ROI (GLCM correlation 1, Imc 0) or NaN,
        # depending on version; either way the texture features describe nothing, so refuse it.
        raise RadiomicFeatureError(
            f"flat {what} in {where}: all {values.size} pixels have intensity {values[0]:g}, "
            "so texture features are undefined"
        )


def extract_roi_features(
    roi: RoiImage, params: Mapping[str, Any] | None = None, *, modality: str | None = None
) -> dict[str, float]:
    """Radiomic features of one ROI: PyRadiomics on one-slice volumes, plus the families asked for.

    Args:
        roi: the image and its 0/1 mask.
        params: a complete parameter mapping; ``None`` uses the packaged 2D defaults.
        modality: the ROI's modality, which selects its intensity normalisation.

    Returns:
        Feature name -> value: the lesion's features on the original image under PyRadiomics'
        names (``original_glcm_Contrast``), then those of each filtered image
        (``log-sigma-2-0-mm-2D_glcm_Contrast``, ``wavelet-LH_glcm_Contrast``), then the ring's
        (``peri_original_glcm_Contrast``). Diagnostics are left out.

    Raises:
        RadiomicFeatureError: the ROI (or its ring) is flat, PyRadiomics rejected it (for example
            an empty or one-pixel mask), a filter or normalisation cannot be applied, or a value
            is not finite; the message names the image, the mask and the problem.
    """
    params = load_radiomics_params() if params is None else params
    extractor = create_extractor(params)
    families = feature_families(params)
    where = f"image {roi.image_path}, mask {roi.mask_path}"
    image = checked_and_normalised(roi.image, roi.mask, families.normalisation_for(modality), "ROI", where)

    features = _execute(extractor, image, roi.mask, roi.spacing, where)
    if not features:
        raise RadiomicFeatureError(f"PyRadiomics returned no features for {where}; check the feature classes")
    if families.log is not None or families.wavelet is not None or families.peritumoral is not None:
        texture_extractor = create_extractor(params, shape=False)
        try:
            for image_type, response, bin_width in filtered_images(image, roi.spacing, families.log, families.wavelet):
                extractor_of_image = texture_extractor if bin_width is None else create_extractor(
                    params, shape=False, bin_width=bin_width)
                computed = _execute(extractor_of_image, response, roi.mask, roi.spacing, where)
                features.update({image_type + name[len(_ORIGINAL):]: value for name, value in computed.items()})
        except FilterError as error:
            raise RadiomicFeatureError(f"cannot filter {where}: {error}") from error
        if families.peritumoral is not None:
            ring = ring_for(roi.mask, roi.spacing, roi.spacing_unit, families.peritumoral)
            if not ring.any():
                raise RadiomicFeatureError(f"the peritumoral ring of {where} is empty: the lesion fills the image")
            refuse_flat(image[ring > 0], "peritumoral ring", where)
            computed = _execute(texture_extractor, image, ring, roi.spacing, where)
            features.update({PERITUMORAL_PREFIX + name: value for name, value in computed.items()})

    refuse_non_finite(features, where)
    return features


def checked_and_normalised(image: np.ndarray, mask: np.ndarray, normalisation: str, what: str, where: str) -> np.ndarray:
    """The image under its modality's normalisation, after refusing a flat lesion.

    Raises:
        RadiomicFeatureError: the lesion is flat, or the normalisation cannot be applied.
    """
    refuse_flat(image[mask > 0], what, where)
    try:
        return normalise_intensities(image, mask, normalisation)
    except NormalisationError as error:
        raise RadiomicFeatureError(f"cannot normalise {where}: {error}") from error


def refuse_non_finite(features: Mapping[str, float], where: str) -> None:
    """Refuse a feature set holding NaN or infinite values (a flat or tiny ROI).

    Raises:
        RadiomicFeatureError: naming the first features and ``where``.
    """
    not_finite = [name for name, value in features.items() if not math.isfinite(value)]
    if not_finite:
        raise RadiomicFeatureError(
            f"PyRadiomics gave non-finite values for {len(not_finite)} feature(s) of {where} "
            f"(a flat or tiny ROI?): {', '.join(not_finite[:5])}{' ...' if len(not_finite) > 5 else ''}"
        )

"""PyRadiomics features of a whole 3D lesion volume (a modality set to ``dimension: 3D``).

Where the data is 3D (MRI volumes, a DICOM series), features can describe the whole lesion rather
than its largest slice. The same parameter mapping is used, turned into PyRadiomics' 3D
configuration, which is IBSI's "3D" one:

- ``force2D`` is off: GLCM and GLRLM are computed along the 13 directions of 3D space and
  averaged over them (IBSI "3D, averaged"); GLSZM zones are 26-connected, GLDM (IBSI's NGLDM)
  and NGTDM use the 26 neighbours (IBSI "3D"); tests/test_ibsi_phantom_3d.py checks these on the
  IBSI digital phantom;
- the shape class is PyRadiomics' 3D ``shape`` (mesh volume, surface area, sphericity, maximum
  3D diameter ...) in place of ``shape2D``;
- the LoG and wavelet families are PyRadiomics' own 3D filters (``log-sigma-S-mm-3D_...``, the
  eight sub-bands ``wavelet-LLL_...`` to ``wavelet-HHH_...``), which run on volumes (the 2D ones
  of :mod:`dlradiomics.features.radiomic.filters` exist because PyRadiomics' refuse one slice);
- the peritumoral ring is a shell around the lesion in 3D (distances in millimetres).

Deep features of the same row still come from the slice with the largest lesion area: the
ImageNet backbones are 2D networks.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk
from radiomics.featureextractor import RadiomicsFeatureExtractor

from dlradiomics.features.radiomic.families import FeatureFamilies
from dlradiomics.features.radiomic.names import (
    PERITUMORAL_PREFIX,
    canonical_settings,
    feature_families,
    is_radiomic_feature_name,
)
from dlradiomics.features.radiomic.params import load_radiomics_params, pyradiomics_params
from dlradiomics.features.radiomic.ring import ring_for
from dlradiomics.features.radiomic.roi import (
    RadiomicFeatureError,
    checked_and_normalised,
    refuse_flat,
    refuse_non_finite,
)

if TYPE_CHECKING:
    from dlradiomics.io import RoiVolume

_extractors: dict[str, RadiomicsFeatureExtractor] = {}


def volume_settings(params: Mapping[str, Any], *, filters: bool = True, shape: bool = True) -> dict[str, Any]:
    """PyRadiomics' 3D settings made from a parameter mapping (2D defaults or a user's file).

    Args:
        params: a complete parameter mapping.
        filters: add PyRadiomics' 3D LoG and wavelet image types for the families that ask for
            them; ``False`` computes on the original image only (the peritumoral ring).
        shape: keep the shape class (3D ``shape``; ``shape2D`` asked for becomes ``shape``).

    Returns:
        The mapping ``RadiomicsFeatureExtractor`` takes.
    """
    settings = copy.deepcopy(pyradiomics_params(params))
    setting = {key: value for key, value in (settings.get("setting") or {}).items() if key != "force2Ddimension"}
    setting["force2D"] = False
    classes = {("shape" if name == "shape2D" else name): value
               for name, value in (settings.get("featureClass") or {}).items()}
    if not shape:
        classes.pop("shape", None)
    image_types: dict[str, Any] = {"Original": {}}
    families = feature_families(params)
    # A family's own bin width becomes PyRadiomics' per-image-type setting of the same name.
    if filters and families.log is not None:
        image_types["LoG"] = {"sigma": [float(sigma) for sigma in families.log.sigmas],
                              **({"binWidth": families.log.bin_width} if families.log.bin_width else {})}
    if filters and families.wavelet is not None:
        image_types["Wavelet"] = {"wavelet": families.wavelet.name,
                                  **({"binWidth": families.wavelet.bin_width} if families.wavelet.bin_width else {})}
    return {**settings, "setting": setting, "featureClass": classes, "imageType": image_types}


def create_volume_extractor(params: Mapping[str, Any], *, ring: bool = False) -> RadiomicsFeatureExtractor:
    """A 3D PyRadiomics extractor for ``params``, built once per process and settings.

    Args:
        params: a complete parameter mapping.
        ring: the extractor of the peritumoral ring (original image, no shape).

    Raises:
        ValueError: PyRadiomics' schema rejects the settings.
    """
    canonical = canonical_settings(params) + f"|3D|ring={ring}"
    if canonical not in _extractors:
        settings = volume_settings(params, filters=not ring, shape=not ring)
        try:
            _extractors[canonical] = RadiomicsFeatureExtractor(settings)
        except RuntimeError as error:  # pykwalify's SchemaError
            raise ValueError(f"invalid PyRadiomics settings: {getattr(error, 'msg', error)}") from error
    return _extractors[canonical]


def volume_image(array: np.ndarray, spacing: tuple[float, float, float]) -> sitk.Image:
    """A (slices, rows, cols) array as a SimpleITK volume with its spacing (slice, row, col)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))
    return image


def _execute(extractor: RadiomicsFeatureExtractor, image: np.ndarray, mask: np.ndarray,
             spacing: tuple[float, float, float], where: str) -> dict[str, float]:
    try:
        result = extractor.execute(volume_image(image, spacing), volume_image(mask, spacing), label=1)
    except (ValueError, RuntimeError, IndexError) as error:
        raise RadiomicFeatureError(f"PyRadiomics failed on {where}: {error}") from error
    return {name: float(value) for name, value in result.items() if is_radiomic_feature_name(name)}


def extract_volume_features(
    volume: RoiVolume, params: Mapping[str, Any] | None = None, *, modality: str | None = None
) -> dict[str, float]:
    """Radiomic features of a whole lesion volume, in PyRadiomics' (IBSI's) 3D configuration.

    Args:
        volume: the image volume and its 0/1 lesion mask.
        params: a complete parameter mapping; ``None`` uses the packaged defaults.
        modality: the ROI's modality, which selects its intensity normalisation.

    Returns:
        Feature name -> value: ``original_shape_*`` (3D shape), first-order and texture features
        of the original image, of the 3D LoG and wavelet images asked for
        (``log-sigma-2-0-mm-3D_glcm_Contrast``, ``wavelet-LLH_glcm_Contrast``), then the 3D
        ring's (``peri_original_glcm_Contrast``).

    Raises:
        RadiomicFeatureError: the lesion (or its ring) is flat, PyRadiomics rejected it, a
            normalisation cannot be applied, or a value is not finite; the message names the
            image, the mask and the problem.
    """
    params = load_radiomics_params() if params is None else params
    families: FeatureFamilies = feature_families(params)
    where = f"volume {volume.image_path}, mask {volume.mask_path}"
    image = checked_and_normalised(volume.image, volume.mask, families.normalisation_for(modality), "lesion volume",
                                   where)

    features = _execute(create_volume_extractor(params), image, volume.mask, volume.spacing, where)
    if not features:
        raise RadiomicFeatureError(f"PyRadiomics returned no features for {where}; check the feature classes")
    if families.peritumoral is not None:
        ring = ring_for(volume.mask, volume.spacing, volume.spacing_unit, families.peritumoral)
        if not ring.any():
            raise RadiomicFeatureError(f"the peritumoral ring of {where} is empty: the lesion fills the volume")
        refuse_flat(image[ring > 0], "peritumoral ring", where)
        computed = _execute(create_volume_extractor(params, ring=True), image, ring, volume.spacing, where)
        features.update({PERITUMORAL_PREFIX + name: value for name, value in computed.items()})
    refuse_non_finite(features, where)
    return features

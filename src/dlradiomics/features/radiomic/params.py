"""PyRadiomics settings: the packaged 2D defaults of the paper, user overrides, and their hash.

A parameter mapping is PyRadiomics' own format (``setting``, ``imageType``, ``featureClass``,
``voxelSetting``) plus one section of ours, ``dlradiomics``, holding the feature families
PyRadiomics cannot compute on a 2D ROI itself (peritumoral ring, 2D LoG and wavelet images,
intensity normalisation; see :mod:`dlradiomics.features.radiomic.families`). Keeping them in the
same mapping means one file, one hash and one provenance record describe every radiomic feature,
and a model bundle that stores the mapping recomputes exactly the features it was trained on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlradiomics.io.safe_yaml import YamlInputError, load_yaml_file

DEFAULT_PARAMS_PATH = Path(__file__).with_name("params") / "radiomics_2d.yaml"

# Sections that *list* what to compute: an override replaces them whole, because naming feature
# classes means "these classes", not "these classes in addition to the defaults".
_REPLACED_SECTIONS = ("imageType", "featureClass")
PYRADIOMICS_SECTIONS = ("setting", "imageType", "featureClass", "voxelSetting")
# Our section: the feature families dlradiomics computes around PyRadiomics.
FAMILIES_SECTION = "dlradiomics"

# How a 2D ROI is handed to PyRadiomics. It is part of the settings hash, so that features computed
# under an earlier convention are never read back from a store as if they were current ones:
# "2d-image" (before 0.2) gave PyRadiomics native 2D images, whose texture matrices do not follow
# IBSI; "one-slice-volume" gives it a one-slice 3D volume, whose matrices do (see docs/ibsi.md).
EXTRACTION_CONVENTION = "one-slice-volume"

RadiomicsParams = dict[str, Any]


def _read_yaml(path: str | os.PathLike[str]) -> RadiomicsParams:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PyRadiomics parameter file {path} does not exist")
    try:
        # The safe reader refuses alias bombs, repeated keys and binary files with a clear reason.
        loaded = load_yaml_file(path, what="PyRadiomics parameter file", max_bytes=1024 * 1024)
    except YamlInputError as error:
        raise ValueError(f"PyRadiomics parameter file {error}") from error
    if not isinstance(loaded, dict):
        raise ValueError(f"PyRadiomics parameter file {path} must hold a mapping, got {type(loaded).__name__}")
    return loaded


def merge_radiomics_params(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> RadiomicsParams:
    """Apply ``overrides`` to ``base`` without modifying either.

    Keys of ``setting`` are merged one by one (``{"setting": {"binWidth": 10}}`` changes only the
    bin width); ``imageType`` and ``featureClass``, when given, replace the base section whole.

    Args:
        base: a complete PyRadiomics parameter mapping.
        overrides: a partial mapping in the same format.

    Returns:
        The merged parameter mapping.
    """
    unknown = set(overrides) - {*PYRADIOMICS_SECTIONS, FAMILIES_SECTION}
    if unknown:
        raise ValueError(
            f"unknown PyRadiomics parameter section(s) {sorted(unknown)}; "
            f"expected setting, imageType, featureClass, voxelSetting or {FAMILIES_SECTION}"
        )
    merged = copy.deepcopy(dict(base))
    for section, value in overrides.items():
        if section in _REPLACED_SECTIONS or not isinstance(value, Mapping):
            merged[section] = copy.deepcopy(value)
        else:
            merged[section] = {**merged.get(section, {}), **copy.deepcopy(dict(value))}
    return merged


def load_radiomics_params(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> RadiomicsParams:
    """Read PyRadiomics settings: the paper's 2D defaults, or a user's file, plus overrides.

    Args:
        path: a PyRadiomics YAML parameter file; ``None`` uses the packaged
            ``params/radiomics_2d.yaml`` (2D, Original image, firstorder, shape2D, glcm, glrlm,
            glszm, gldm, ngtdm, bin width 25).
        overrides: partial settings applied on top (see :func:`merge_radiomics_params`).

    Returns:
        The parameter mapping, in the format ``RadiomicsFeatureExtractor`` accepts.
    """
    params = _read_yaml(DEFAULT_PARAMS_PATH if path is None else path)
    if overrides:
        params = merge_radiomics_params(params, overrides)
    return params


def resolve_radiomics_params(
    params: str | os.PathLike[str] | Mapping[str, Any] | None,
) -> RadiomicsParams:
    """Turn what a caller passed as ``params`` into a complete parameter mapping.

    Args:
        params: ``None`` (the packaged defaults), a path to a YAML file (used as it is), or a
            mapping of overrides applied to the packaged defaults.

    Returns:
        The complete parameter mapping.
    """
    if params is None:
        return load_radiomics_params()
    if isinstance(params, (str, os.PathLike)):
        return load_radiomics_params(params)
    if isinstance(params, Mapping):
        return load_radiomics_params(overrides=params)
    raise TypeError(f"params must be None, a path or a mapping, got {type(params).__name__}")


def pyradiomics_params(params: Mapping[str, Any]) -> RadiomicsParams:
    """The part of a parameter mapping that PyRadiomics reads (our ``dlradiomics`` section left out)."""
    return {section: value for section, value in params.items() if section != FAMILIES_SECTION}


def settings_sha256(params: Mapping[str, Any]) -> str:
    """SHA-256 of the settings and the extraction convention, so equal settings hash equally.

    The hash covers :data:`EXTRACTION_CONVENTION` as well as the mapping: rows a store holds from
    an earlier way of handing ROIs to PyRadiomics get another key and are never read back.
    """
    canonical = json.dumps(
        {"params": params, "convention": EXTRACTION_CONVENTION}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

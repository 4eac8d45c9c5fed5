"""Image I/O: any supported file format -> one 2D greyscale image and its binary lesion mask.

Public API: :func:`load_roi`, :class:`RoiImage` (and its :class:`IntensityProfile`),
:class:`ImageReadError`, :func:`sha256_file`, :class:`FileHashCache`, and the lower-level
:func:`read_image`. The intensity convention every reader applies is described in
:mod:`dlradiomics.io.readers` (:data:`INTENSITY_CONVENTION`).
"""

from dlradiomics.io.errors import ImageReadError
from dlradiomics.io.hashing import FileHashCache, sha256_file
from dlradiomics.io.loading import LossyMaskWarning, load_roi, roi_from_arrays
from dlradiomics.io.readers import (
    INTENSITY_CONVENTION,
    SUPPORTED_SUFFIXES,
    ColourImageWarning,
    ImageArray,
    IntensityConventionWarning,
    file_stem,
    read_image,
)
from dlradiomics.io.roi import PROFILE_PERCENTILES, IntensityProfile, RoiImage

__all__ = [
    "INTENSITY_CONVENTION",
    "PROFILE_PERCENTILES",
    "SUPPORTED_SUFFIXES",
    "ColourImageWarning",
    "FileHashCache",
    "ImageArray",
    "ImageReadError",
    "IntensityConventionWarning",
    "IntensityProfile",
    "LossyMaskWarning",
    "RoiImage",
    "file_stem",
    "load_roi",
    "read_image",
    "roi_from_arrays",
    "sha256_file",
]

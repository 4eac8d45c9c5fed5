"""Image I/O: any supported file format -> one 2D greyscale image and its binary lesion mask.

Public API: :func:`load_roi`, :class:`RoiImage` (and its :class:`IntensityProfile`),
:func:`load_roi_volume` and :class:`RoiVolume` (3D, for radiomic features on the whole lesion),
:class:`ImageReadError`, :func:`sha256_file`, :class:`FileHashCache`, and the lower-level
:func:`read_image`. The intensity convention every reader applies is described in
:mod:`dlradiomics.io.readers` (:data:`INTENSITY_CONVENTION`).
"""

from dlradiomics.io.dicom_series import folder_holds_dicom
from dlradiomics.io.errors import ImageReadError
from dlradiomics.io.hashing import FileHashCache, sha256_file
from dlradiomics.io.image_array import check_same_geometry
from dlradiomics.io.loading import LossyMaskWarning, load_roi, load_roi_volume, roi_from_arrays
from dlradiomics.io.readers import (
    INTENSITY_CONVENTION,
    SUPPORTED_SUFFIXES,
    ColourImageWarning,
    ImageArray,
    IntensityConventionWarning,
    file_stem,
    read_image,
)
from dlradiomics.io.roi import PROFILE_PERCENTILES, IntensityProfile, RoiImage, RoiVolume

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
    "RoiVolume",
    "check_same_geometry",
    "file_stem",
    "folder_holds_dicom",
    "load_roi",
    "load_roi_volume",
    "read_image",
    "roi_from_arrays",
    "sha256_file",
]

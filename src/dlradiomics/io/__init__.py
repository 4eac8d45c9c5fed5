"""Image I/O: any supported file format -> one 2D greyscale image and its binary lesion mask.

Public API: :func:`load_roi`, :class:`RoiImage`, :class:`ImageReadError`, :func:`sha256_file`,
and the lower-level :func:`read_image`.
"""

from dlradiomics.io.errors import ImageReadError
from dlradiomics.io.hashing import sha256_file
from dlradiomics.io.loading import LossyMaskWarning, load_roi, roi_from_arrays
from dlradiomics.io.readers import SUPPORTED_SUFFIXES, ColourImageWarning, ImageArray, file_stem, read_image
from dlradiomics.io.roi import RoiImage

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ColourImageWarning",
    "ImageArray",
    "ImageReadError",
    "LossyMaskWarning",
    "RoiImage",
    "file_stem",
    "load_roi",
    "read_image",
    "roi_from_arrays",
    "sha256_file",
]

"""`RoiImage`: one 2D greyscale image and its binary lesion mask, the unit every feature works on;
`RoiVolume`: the same for a whole 3D volume, for radiomic features computed in 3D."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import SimpleITK as sitk

# Robust percentiles recorded in an intensity profile (of the whole image, as features see it).
PROFILE_PERCENTILES = (0.5, 1.0, 5.0, 50.0, 95.0, 99.0, 99.5)


@dataclass(frozen=True)
class IntensityProfile:
    """What an image's intensities look like: how they were stored and where they lie.

    A model bundle records these for its training images so that a new image stored differently
    (another bit depth, a rescaled copy, another device) can be recognised at prediction time.

    Args:
        dtype: the sample type stored in the file (``"uint8"``, ``"uint16"``, ``"int16"``).
        bit_depth: bits per sample of an integer raster (or DICOM BitsStored); ``None`` otherwise.
        percentiles: percentile -> value of the whole image after the intensity convention (the
            numbers every feature is computed from), for :data:`PROFILE_PERCENTILES`.
        minimum: the smallest value, after the convention.
        maximum: the largest value, after the convention.
    """

    dtype: str
    bit_depth: int | None
    percentiles: dict[float, float]
    minimum: float
    maximum: float

    def as_dict(self) -> dict[str, Any]:
        """Plain values (JSON-ready): ``{"dtype", "bit_depth", "min", "max", "p0.5", "p1", ...}``."""
        values: dict[str, Any] = {"dtype": self.dtype, "bit_depth": self.bit_depth, "min": self.minimum,
                                  "max": self.maximum}
        values.update({f"p{percentile:g}": value for percentile, value in self.percentiles.items()})
        return values


@dataclass(frozen=True)
class RoiImage:
    """A 2D image with its lesion mask, as read from disk.

    The arrays are read-only so that one consumer cannot silently change what another sees.

    Args:
        image: 2D float32 array of the intensities under io's intensity convention (see
            :mod:`dlradiomics.io.readers`: integer rasters on the 8-bit scale, other formats as
            stored), greyscale.
        mask: 2D uint8 array, 1 = lesion, 0 = background; same shape as ``image``.
        spacing: pixel spacing (row, col) in ``spacing_unit``.
        image_path: the image file it came from.
        mask_path: the mask file it came from.
        slice_index: the slice taken from a 3D volume, or ``None`` for a 2D file.
        spacing_unit: ``"mm"`` when the file records a physical spacing, ``"pixel"`` otherwise.
        source_dtype: the sample type stored in the image file.
        source_bit_depth: bits per sample of an integer raster (or DICOM BitsStored), else ``None``.
    """

    image: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float]
    image_path: str
    mask_path: str
    slice_index: int | None = None
    spacing_unit: str = "pixel"
    source_dtype: str = "float32"
    source_bit_depth: int | None = None

    def __post_init__(self) -> None:
        _freeze_arrays(self, 2)

    def intensity_profile(self) -> IntensityProfile:
        """The image's :class:`IntensityProfile` (computed on request: it sorts every pixel)."""
        return intensity_profile_of(self.image, self.source_dtype, self.source_bit_depth)

    def to_sitk(self) -> tuple["sitk.Image", "sitk.Image"]:
        """The image and mask as 2D SimpleITK images with the pixel spacing set.

        PyRadiomics needs one-slice volumes instead for IBSI-conformant texture features; the
        radiomic extraction builds those itself (see :mod:`dlradiomics.features.radiomic.roi`).

        Returns:
            ``(image, mask)``; the mask holds label 1 for the lesion.
        """
        import SimpleITK as sitk

        # SimpleITK spacing is (x, y) = (col, row): the reverse of numpy's axis order.
        xy_spacing = (self.spacing[1], self.spacing[0])
        image = sitk.GetImageFromArray(np.ascontiguousarray(self.image))
        image.SetSpacing(xy_spacing)
        mask = sitk.GetImageFromArray(np.ascontiguousarray(self.mask))
        mask.SetSpacing(xy_spacing)
        return image, mask


def intensity_profile_of(image: np.ndarray, dtype: str, bit_depth: int | None) -> IntensityProfile:
    """The :class:`IntensityProfile` of an image array (2D or 3D) and what its file stored."""
    values = np.percentile(image, PROFILE_PERCENTILES)
    return IntensityProfile(
        dtype=dtype,
        bit_depth=bit_depth,
        percentiles={p: float(v) for p, v in zip(PROFILE_PERCENTILES, values)},
        minimum=float(image.min()),
        maximum=float(image.max()),
    )


@dataclass(frozen=True)
class RoiVolume:
    """A 3D image with its lesion mask, for radiomic features computed on the whole lesion volume.

    The arrays are read-only, as in :class:`RoiImage`.

    Args:
        image: 3D float32 array (slices, rows, cols) of the intensities as io reads them.
        mask: 3D uint8 array, 1 = lesion, 0 = background; same shape as ``image``.
        spacing: voxel spacing (slice, row, col) in ``spacing_unit``.
        image_path: the image file (or DICOM folder) it came from.
        mask_path: the mask file it came from.
        spacing_unit: ``"mm"`` when the file records a physical spacing, ``"pixel"`` otherwise.
        source_dtype: the sample type stored in the image file.
        source_bit_depth: bits per sample of an integer raster (or DICOM BitsStored), else ``None``.
        largest_slice: the slice with the largest lesion area (what 2D features and deep features
            of the same row use).
    """

    image: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float, float]
    image_path: str
    mask_path: str
    spacing_unit: str = "mm"
    source_dtype: str = "float32"
    source_bit_depth: int | None = None
    largest_slice: int = 0

    def __post_init__(self) -> None:
        _freeze_arrays(self, 3)

    def intensity_profile(self) -> IntensityProfile:
        """The volume's :class:`IntensityProfile` (every voxel of the volume)."""
        return intensity_profile_of(self.image, self.source_dtype, self.source_bit_depth)


def _freeze_arrays(roi: RoiImage | RoiVolume, ndim: int) -> None:
    """Check an ROI's arrays and spacing, and store read-only float32 / uint8 copies of them."""
    image = np.array(roi.image, dtype=np.float32, copy=True)
    mask = np.array(roi.mask, dtype=np.uint8, copy=True)
    if image.ndim != ndim or mask.shape != image.shape:
        raise ValueError(
            f"{type(roi).__name__} needs a {ndim}D image and a mask of the same shape; got image {image.shape} "
            f"and mask {mask.shape} ({roi.image_path}, {roi.mask_path})"
        )
    if roi.spacing_unit not in ("mm", "pixel"):
        raise ValueError(f"spacing_unit must be 'mm' or 'pixel', got {roi.spacing_unit!r}")
    image.flags.writeable = False
    mask.flags.writeable = False
    object.__setattr__(roi, "image", image)
    object.__setattr__(roi, "mask", mask)
    object.__setattr__(roi, "spacing", tuple(float(value) for value in roi.spacing[:ndim]))

"""`RoiImage`: one 2D greyscale image and its binary lesion mask, the unit every feature works on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import SimpleITK as sitk


@dataclass(frozen=True)
class RoiImage:
    """A 2D image with its lesion mask, as read from disk.

    The arrays are read-only so that one consumer cannot silently change what another sees.

    Args:
        image: 2D float32 array of the original intensities (greyscale).
        mask: 2D uint8 array, 1 = lesion, 0 = background; same shape as ``image``.
        spacing: pixel spacing (row, col) in the file's units (mm for DICOM/NIfTI, 1.0 for PNG).
        image_path: the image file it came from.
        mask_path: the mask file it came from.
        slice_index: the slice taken from a 3D volume, or ``None`` for a 2D file.
    """

    image: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float]
    image_path: str
    mask_path: str
    slice_index: int | None = None

    def __post_init__(self) -> None:
        image = np.array(self.image, dtype=np.float32, copy=True)
        mask = np.array(self.mask, dtype=np.uint8, copy=True)
        if image.ndim != 2 or mask.shape != image.shape:
            raise ValueError(
                f"RoiImage needs a 2D image and a mask of the same shape; got image {image.shape} "
                f"and mask {mask.shape} ({self.image_path}, {self.mask_path})"
            )
        image.flags.writeable = False
        mask.flags.writeable = False
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "spacing", (float(self.spacing[0]), float(self.spacing[1])))

    def to_sitk(self) -> tuple["sitk.Image", "sitk.Image"]:
        """The image and mask as SimpleITK images with the pixel spacing set, ready for PyRadiomics.

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

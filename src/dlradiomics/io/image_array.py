"""`ImageArray`: the pixels of one file (or DICOM folder) before any ROI logic, and its geometry.

Files that place their pixels in patient space (DICOM, NIfTI, NRRD, MetaImage) carry an origin and
a direction besides the spacing; :func:`check_same_geometry` refuses a mask volume that does not
lie on its image's grid, naming both files. Rasters (PNG, JPEG, TIFF) have no geometry: their
mask is checked by size alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dlradiomics.io.errors import ImageReadError

if TYPE_CHECKING:
    import SimpleITK as sitk

# Tolerances of the geometry check. NIfTI stores its affine in float32 (about 2e-5 mm at 300 mm
# from the origin), so ITK's own default (1e-6) refuses masks that ITK-SNAP saved from the very
# image; a thousandth of a voxel still catches any mask drawn on another grid.
ORIGIN_TOLERANCE_VOXELS = 1e-3
SPACING_RELATIVE_TOLERANCE = 1e-4
DIRECTION_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ImageArray:
    """The pixels of one file before any ROI logic.

    Args:
        array: 2D (rows, cols) or 3D (slices, rows, cols) array, after the intensity convention.
        spacing: pixel spacing per axis of ``array``, in the same axis order.
        spacing_unit: ``"mm"`` when the format records a physical spacing (DICOM, NIfTI, NRRD,
            MetaImage), ``"pixel"`` otherwise (raster formats, whose resolution fields are print
            resolutions, or a DICOM without pixel spacing).
        dtype: the numpy dtype of the samples as stored in the file (``"uint8"``, ``"uint16"``).
        bit_depth: bits per sample of an integer raster (8, 16); ``None`` for other formats.
        origin: the first voxel's centre in patient coordinates (mm, as SimpleITK gives it);
            ``None`` for formats without a geometry.
        direction: SimpleITK's direction matrix, row-major (column k is the direction of index
            axis k in SimpleITK's order: column, row, slice); ``None`` without a geometry.
        series_uid: the DICOM SeriesInstanceUID, for DICOM files and folders.
        instance_uids: the DICOM SOPInstanceUID of each slice (one for a single 2D file), in the
            array's slice order; what a DICOM-SEG mask refers to.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    spacing_unit: str = "pixel"
    dtype: str = "float32"
    bit_depth: int | None = None
    origin: tuple[float, ...] | None = None
    direction: tuple[float, ...] | None = None
    series_uid: str | None = None
    instance_uids: tuple[str, ...] | None = None


def geometry_of(image: sitk.Image) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """``(origin, direction, spacing)`` of a SimpleITK image; the spacing in numpy's axis order."""
    origin = tuple(float(v) for v in image.GetOrigin())
    direction = tuple(float(v) for v in image.GetDirection())
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    return origin, direction, spacing


def check_same_geometry(image: ImageArray, mask: ImageArray, image_path: str | os.PathLike[str],
                        mask_path: str | os.PathLike[str]) -> None:
    """Refuse a mask whose voxel grid is not its image's (size, spacing, origin, direction).

    Checked only when both carry a geometry and have as many axes; rasters have none.

    Raises:
        ImageReadError: on the mask, naming both files, what differs and by how much.
    """
    if image.array.shape != mask.array.shape:
        raise ImageReadError(
            mask_path, f"mask size {tuple(mask.array.shape)} differs from image size {tuple(image.array.shape)} of "
            f"{image_path}; masks are never resized", kind="size_mismatch")
    if image.origin is None or mask.origin is None or len(image.origin) != len(mask.origin):
        return
    spacing_image, spacing_mask = np.asarray(image.spacing), np.asarray(mask.spacing)
    problems = []
    if np.any(np.abs(spacing_image - spacing_mask) > SPACING_RELATIVE_TOLERANCE * spacing_image):
        problems.append(f"spacing {_shown(mask.spacing)} mm (image {_shown(image.spacing)} mm)")
    offset = np.abs(np.asarray(image.origin) - np.asarray(mask.origin)).max()
    if offset > ORIGIN_TOLERANCE_VOXELS * float(spacing_image.min()):
        problems.append(f"origin {_shown(mask.origin)} (image {_shown(image.origin)}; {offset:.4g} mm apart)")
    if image.direction is not None and mask.direction is not None and (
            len(image.direction) != len(mask.direction)
            or np.abs(np.asarray(image.direction) - np.asarray(mask.direction)).max() > DIRECTION_TOLERANCE):
        problems.append(f"direction {_shown(mask.direction)} (image {_shown(image.direction)})")
    if problems:
        raise ImageReadError(
            mask_path, f"mask does not lie on the grid of its image {image_path}: " + "; ".join(problems)
            + " (the mask was drawn on another image, or saved with another orientation)", kind="geometry_mismatch")


def _shown(values) -> str:
    return "(" + ", ".join(f"{float(v):.6g}" for v in values) + ")"

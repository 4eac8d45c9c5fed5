"""The peritumoral ring: a band of tissue around the lesion, clipped to the image."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from dlradiomics.features.radiomic.families import PeritumoralRing


def ring_width(ring: PeritumoralRing, spacing_unit: str) -> tuple[float, str]:
    """The band's width for one image: in millimetres where the spacing is known and a width in mm
    is set, else in pixels.

    Args:
        ring: the family's settings.
        spacing_unit: ``"mm"`` or ``"pixel"`` (:attr:`dlradiomics.io.RoiImage.spacing_unit`).

    Returns:
        ``(width, unit)`` with unit ``"mm"`` or ``"pixel"``.
    """
    if spacing_unit == "mm" and ring.width_mm is not None:
        return float(ring.width_mm), "mm"
    return float(ring.width_px), "pixel"


def ring_for(lesion: np.ndarray, spacing: tuple[float, ...], spacing_unit: str, ring: PeritumoralRing) -> np.ndarray:
    """The ring mask of one ROI (2D) or lesion volume (3D) under the family's settings (see
    :func:`peritumoral_ring_mask`)."""
    width, unit = ring_width(ring, spacing_unit)
    sampling = spacing if unit == "mm" else (1.0,) * len(spacing)
    return peritumoral_ring_mask(lesion, sampling, width)


def peritumoral_ring_mask(lesion: np.ndarray, spacing: tuple[float, ...], width: float) -> np.ndarray:
    """Pixels outside the lesion whose centre lies within ``width`` of a lesion pixel's centre.

    The distance is Euclidean in the spacing's unit (an anisotropic pixel grid gives a band of
    equal physical width), and the band stops at the image border.

    Args:
        lesion: 2D (or 3D) 0/1 lesion mask.
        spacing: pixel spacing per axis (row, col; or slice, row, col), in the unit of ``width``.
        width: the band's width.

    Returns:
        uint8 0/1 mask of the ring, of the lesion's shape; empty when the lesion fills the image.
    """
    outside = lesion == 0
    if outside.all():
        return np.zeros_like(lesion, dtype=np.uint8)
    # Euclidean distance of each pixel outside the lesion to the nearest lesion pixel (Maurer's
    # exact transform, in the spacing's unit; SimpleITK's spacing is (col, row[, slice])).
    lesion_image = sitk.GetImageFromArray((~outside).astype(np.uint8))
    lesion_image.SetSpacing(tuple(float(value) for value in reversed(spacing)))
    distance = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(lesion_image, insideIsPositive=False, squaredDistance=False,
                                     useImageSpacing=True))
    return (outside & (distance <= width)).astype(np.uint8)

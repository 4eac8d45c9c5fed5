"""Filtered 2D images for PyRadiomics: Laplacian of Gaussian and stationary wavelet sub-bands.

PyRadiomics filters the image it is given. Its LoG filter refuses a one-slice volume (it needs 4
voxels along every axis) and its wavelet filter, with ``force2D``, transforms a 2D image along one
axis only; but dlradiomics must hand PyRadiomics one-slice volumes for the texture matrices to
follow IBSI (docs/ibsi.md). So the 2D responses are computed here, with the same libraries and the
same calls PyRadiomics makes (SimpleITK's recursive-Gaussian LoG normalised across scale,
PyWavelets' ``swtn`` with periodic padding to even sizes), and PyRadiomics then extracts features
from each response as an original image. tests/test_radiomic_filters.py checks that the responses
equal PyRadiomics' own on a 2D image where both run.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import SimpleITK as sitk

from dlradiomics.features.radiomic.families import LaplacianOfGaussian, Wavelet


class FilterError(ValueError):
    """A filter cannot be applied to an image (too small for the requested sigma, say)."""


def log_image_name(sigma: float) -> str:
    """Image-type name of a 2D LoG response, PyRadiomics-style: ``log-sigma-2-0-mm-2D``."""
    return f"log-sigma-{str(float(sigma)).replace('.', '-')}-mm-2D"


def laplacian_of_gaussian(image: np.ndarray, spacing: tuple[float, float], sigma: float) -> np.ndarray:
    """The 2D Laplacian of Gaussian response of ``image``, normalised across scale.

    Args:
        image: 2D array (rows, cols).
        spacing: pixel spacing (row, col); ``sigma`` is in the same unit.
        sigma: width of the Gaussian.

    Returns:
        The float32 response, same shape as ``image``.

    Raises:
        FilterError: the image is smaller than the kernel along an axis.
    """
    rows_cols = np.array(image.shape)
    needed = np.ceil(sigma / np.array(spacing)) + 1
    if np.any(rows_cols < needed) or np.any(rows_cols < 4):
        raise FilterError(
            f"image of {tuple(image.shape)} pixels is too small for a LoG of sigma {sigma:g} "
            f"(needs at least {tuple(int(n) for n in np.maximum(needed, 4))})"
        )
    itk_image = sitk.GetImageFromArray(np.ascontiguousarray(image, dtype=np.float32))
    itk_image.SetSpacing((float(spacing[1]), float(spacing[0])))
    log_filter = sitk.LaplacianRecursiveGaussianImageFilter()
    log_filter.SetNormalizeAcrossScale(True)
    log_filter.SetSigma(float(sigma))
    return sitk.GetArrayFromImage(log_filter.Execute(itk_image)).astype(np.float32)


def wavelet_subbands(image: np.ndarray, wavelet: str = "coif1") -> dict[str, np.ndarray]:
    """The one-level 2D stationary wavelet sub-bands of ``image``, named as PyRadiomics names them.

    The transform runs over (cols, rows) in that order, as PyRadiomics orders the axes, so that
    ``wavelet-LH`` is low-pass along the columns' axis and high-pass along the rows' axis. An odd
    size is padded by one periodic pixel (``swtn`` needs even sizes) and cropped back afterwards.

    Args:
        image: 2D array (rows, cols).
        wavelet: a PyWavelets discrete wavelet.

    Returns:
        ``{"wavelet-LH": ..., "wavelet-HL": ..., "wavelet-HH": ..., "wavelet-LL": ...}``, float32
        arrays of the image's shape.
    """
    import pywt

    original_shape = image.shape
    padding = tuple((0, 1 if size % 2 else 0) for size in original_shape)
    data = np.pad(np.asarray(image, dtype=np.float64), padding, "wrap")
    bands = pywt.swtn(data, pywt.Wavelet(wavelet), level=1, start_level=0, axes=(1, 0))[0]
    crop = tuple(slice(None, -1 if size % 2 else None) for size in original_shape)
    named = {}
    for key, band in bands.items():
        if key == "aa":
            continue
        named["wavelet-" + key.replace("a", "L").replace("d", "H")] = band[crop].astype(np.float32)
    named["wavelet-LL"] = bands["aa"][crop].astype(np.float32)
    return named


def filtered_images(
    image: np.ndarray,
    spacing: tuple[float, float],
    log: LaplacianOfGaussian | None,
    wavelet: Wavelet | None,
) -> Iterator[tuple[str, np.ndarray, float | None]]:
    """Each filtered image the families ask for, as ``(image-type name, 2D response, bin width)``.

    Args:
        image: the (normalised) 2D image.
        spacing: pixel spacing (row, col).
        log: the LoG family or ``None``.
        wavelet: the wavelet family or ``None``.

    The bin width is the family's own, or ``None`` for the original image's.
    """
    if log is not None:
        for sigma in log.sigmas:
            yield log_image_name(sigma), laplacian_of_gaussian(image, spacing, sigma), log.bin_width
    if wavelet is not None:
        for name, band in wavelet_subbands(image, wavelet.name).items():
            yield name, band, wavelet.bin_width


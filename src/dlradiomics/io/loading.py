"""`load_roi`: an image file and its mask file -> one 2D :class:`RoiImage`; `load_roi_volume`: the
same for a 3D volume -> one :class:`RoiVolume` (for radiomic features computed in 3D)."""

from __future__ import annotations

import os

import warnings

import numpy as np

from dlradiomics.io.errors import ImageReadError
from dlradiomics.io.image_array import ImageArray, check_same_geometry
from dlradiomics.io.plausibility import implausible_roi
from dlradiomics.io.readers import file_suffix, read_image
from dlradiomics.io.roi import RoiImage, RoiVolume

LOSSY_SUFFIXES = (".jpg", ".jpeg")


class LossyMaskWarning(UserWarning):
    """A mask stored in a lossy format (JPEG) was thresholded at half its maximum, not at non-zero."""


def load_roi(
    image_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    *,
    mask_label: int | None = None,
    slice_index: int | None = None,
) -> RoiImage:
    """Read an image and its lesion mask into one 2D ROI.

    Args:
        image_path: PNG/JPEG/TIFF/BMP, DICOM, NIfTI or NRRD file, or a folder holding one DICOM
            series (a volume).
        mask_path: the lesion mask, same size as the image (never resized). A 0/255 PNG works;
            a JPEG mask is thresholded at half its maximum (compression noise is not lesion). The
            mask of a volume is a volume of the same geometry (NIfTI, NRRD, a DICOM folder) or a
            DICOM-SEG file that segments the image's series.
        mask_label: which value of a multi-label mask (e.g. an ITK-SNAP segmentation) is the
            lesion; ``None`` takes every non-zero value.
        slice_index: for a 3D volume, the slice to use (0-based, first array axis); ``None`` takes
            the slice with the largest lesion area.

    Returns:
        The ROI with float32 image (under io's intensity convention, see
        :mod:`dlradiomics.io.readers`), 0/1 uint8 mask, in-plane spacing and what the file stored.

    Raises:
        ImageReadError: a file is missing, unreadable or corrupt; the mask's size or geometry
            differs from the image's; the label is absent; the mask (or the chosen slice) holds no
            lesion.
    """
    image = read_image(image_path)
    mask = read_image(mask_path, as_labels=True, reference=image, reference_path=image_path)
    return roi_from_arrays(image, mask, image_path, mask_path, mask_label=mask_label, slice_index=slice_index)


def roi_from_arrays(
    image: ImageArray,
    mask: ImageArray,
    image_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    *,
    mask_label: int | None = None,
    slice_index: int | None = None,
) -> RoiImage:
    """The ROI of an image and a mask already read with :func:`read_image` (see :func:`load_roi`).

    Args:
        image: the image's pixels.
        mask: the mask's labels (read with ``as_labels=True``).
        image_path: the image file, for messages and provenance.
        mask_path: the mask file, for messages and provenance.
        mask_label: the lesion's value in a multi-label mask; ``None`` takes every non-zero value.
        slice_index: the slice of a 3D volume; ``None`` takes the largest lesion area.

    Raises:
        ImageReadError: as :func:`load_roi`, except for unreadable files.
    """
    if image.array.ndim == mask.array.ndim:
        check_same_geometry(image, mask, image_path, mask_path)
    lesion = _select_label(mask.array, mask_path, mask_label)

    if image.array.ndim == 3:
        chosen = _choose_slice(image.array.shape, lesion, image_path, mask_path, slice_index)
        image_plane = image.array[chosen]
        lesion_plane = lesion[chosen] if lesion.ndim == 3 else lesion
        spacing = image.spacing[1:]
    else:
        if lesion.ndim == 3:
            raise ImageReadError(
                mask_path,
                f"mask is a 3D volume {lesion.shape} but its image {image_path} is 2D {image.array.shape}",
                kind="size_mismatch",
            )
        if slice_index not in (None, 0):
            raise ImageReadError(image_path, f"slice {slice_index} requested but the image is 2D", kind="bad_slice")
        chosen = None
        image_plane, lesion_plane, spacing = image.array, lesion, image.spacing
        _require_same_size(image_plane.shape, lesion_plane.shape, image_path, mask_path)

    if not lesion_plane.any():
        where = "" if chosen is None else f" on slice {chosen}"
        label = "any non-zero value" if mask_label is None else f"label {mask_label}"
        raise ImageReadError(
            mask_path, f"mask is empty{where} ({label}; size {lesion_plane.shape})", kind="empty_mask"
        )
    raw_mask_plane = mask.array[chosen] if chosen is not None and mask.array.ndim == 3 else mask.array
    implausible = implausible_roi(image_plane, raw_mask_plane, lesion_plane)
    if implausible is not None:
        kind, explanation = implausible
        raise ImageReadError(image_path if kind == "non_finite_pixels" else mask_path,
                             f"{explanation} (image {image_path})" if kind != "non_finite_pixels" else explanation,
                             kind=kind)
    return RoiImage(
        image=image_plane.astype(np.float32),
        mask=lesion_plane.astype(np.uint8),
        spacing=(spacing[0], spacing[1]),
        image_path=str(image_path),
        mask_path=str(mask_path),
        slice_index=chosen,
        spacing_unit=image.spacing_unit,
        source_dtype=image.dtype,
        source_bit_depth=image.bit_depth,
    )


def load_roi_volume(
    image_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    *,
    mask_label: int | None = None,
) -> RoiVolume:
    """Read a 3D image and its 3D lesion mask into one :class:`RoiVolume`.

    The checks :func:`load_roi` makes on a slice (empty mask, implausible masks, NaN pixels) are
    made on the slice with the largest lesion area, and the mask must lie on the image's grid.

    Args:
        image_path: a NIfTI, NRRD or MetaImage volume, a multi-frame DICOM file, or a folder
            holding one DICOM series.
        mask_path: a volume of the same geometry (NIfTI, NRRD, a DICOM folder) or a DICOM-SEG file.
        mask_label: the lesion's value (or DICOM-SEG segment number); ``None`` takes every non-zero value.

    Raises:
        ImageReadError: as :func:`load_roi`, or the image or its mask is not a 3D volume.
    """
    image = read_image(image_path)
    mask = read_image(mask_path, as_labels=True, reference=image, reference_path=image_path)
    if image.array.ndim != 3:
        raise ImageReadError(
            image_path, f"the image is 2D {tuple(image.array.shape)}, but features in 3D need a volume (a NIfTI, "
            "NRRD or DICOM series); compute this modality's features in 2D", kind="unsupported")
    if mask.array.ndim != 3:
        raise ImageReadError(
            mask_path, f"the mask is 2D {tuple(mask.array.shape)}, but features in 3D need a mask volume of the "
            f"image's geometry ({image_path} is {tuple(image.array.shape)})", kind="size_mismatch")
    largest = roi_from_arrays(image, mask, image_path, mask_path, mask_label=mask_label)
    lesion = _select_label(mask.array, mask_path, mask_label)
    return RoiVolume(
        image=image.array.astype(np.float32),
        mask=lesion.astype(np.uint8),
        spacing=(image.spacing[0], image.spacing[1], image.spacing[2]),
        image_path=str(image_path),
        mask_path=str(mask_path),
        spacing_unit=image.spacing_unit,
        source_dtype=image.dtype,
        source_bit_depth=image.bit_depth,
        largest_slice=int(largest.slice_index),
    )


def _select_label(mask: np.ndarray, mask_path, mask_label: int | None) -> np.ndarray:
    if mask_label is None:
        if file_suffix(mask_path) in LOSSY_SUFFIXES:
            # JPEG noise turns background 0 into 1, 2, 3 ...: "non-zero" would grow the lesion.
            warnings.warn(
                f"{mask_path}: lossy JPEG mask; lesion = values of at least half its maximum",
                LossyMaskWarning,
                stacklevel=4,
            )
            return mask >= mask.max() / 2 if mask.max() > 0 else mask != 0
        return mask != 0
    lesion = mask == mask_label
    if not lesion.any():
        present = np.unique(mask)
        shown = ", ".join(str(v) for v in present[:10]) + (" ..." if present.size > 10 else "")
        raise ImageReadError(
            mask_path, f"mask label {mask_label} not found; the mask holds values {shown}", kind="label_missing"
        )
    return lesion


def _require_same_size(image_shape, mask_shape, image_path, mask_path) -> None:
    if tuple(image_shape) != tuple(mask_shape):
        raise ImageReadError(
            mask_path,
            f"mask size {tuple(mask_shape)} differs from image size {tuple(image_shape)} of {image_path}; "
            "masks are never resized",
            kind="size_mismatch",
        )


def _choose_slice(image_shape, lesion: np.ndarray, image_path, mask_path, slice_index: int | None) -> int:
    if lesion.ndim == 3:
        _require_same_size(image_shape, lesion.shape, image_path, mask_path)
    else:
        _require_same_size(image_shape[1:], lesion.shape, image_path, mask_path)
        if slice_index is None:
            raise ImageReadError(
                image_path,
                f"3D volume {tuple(image_shape)} with a 2D mask: the manifest must name the slice",
                kind="bad_slice",
            )
    if slice_index is None:
        # The paper's rule: the slice showing the largest lesion cross-section.
        areas = lesion.reshape(lesion.shape[0], -1).sum(axis=1)
        return int(np.argmax(areas))
    if not 0 <= slice_index < image_shape[0]:
        raise ImageReadError(
            image_path, f"slice {slice_index} out of range: the volume has {image_shape[0]} slices", kind="bad_slice"
        )
    return int(slice_index)

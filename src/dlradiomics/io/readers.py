"""Readers that turn one file of any supported format into a numpy array plus pixel spacing.

Raster files (PNG, JPEG, TIFF, BMP, PGM) go through Pillow, DICOM through pydicom (so that the
modality LUT, VOI LUT and MONOCHROME1 inversion follow the standard), and NIfTI / NRRD / MetaImage
through SimpleITK. Every failure becomes an :class:`ImageReadError` naming the file.

The intensity convention (one rule, applied here so that training, prediction, radiomic and deep
features all see the same numbers):

- Raster images hold integer samples that their formats define as fractions of the container's full
  scale (the PNG specification scales a 12-bit image up to 16 bits, for instance). io reads every
  integer raster on the 8-bit scale: ``value * 255 / (2**bits - 1)``, ``bits`` being the file's bits
  per sample. An 8-bit file is read unchanged, and a 16-bit copy of it made by any converter that
  follows the formats (each value times 257) is read to exactly the same numbers. Floating-point
  TIFFs are read as stored.
- DICOM, NIfTI, NRRD and MetaImage carry calibrated or scanner units (DICOM through its modality and
  VOI LUTs) and are read as stored.

A 16-bit raster whose largest value is at most 255 was most likely saved from 8-bit data without
scaling; it is read by the rule all the same (so nearly black) and :class:`IntensityConventionWarning`
says so. :attr:`ImageArray.dtype` and :attr:`ImageArray.bit_depth` keep what the file held.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from dlradiomics.io.dicom_seg import is_segmentation, read_segmentation
from dlradiomics.io.dicom_series import read_series
from dlradiomics.io.errors import ImageReadError
from dlradiomics.io.image_array import ImageArray, geometry_of

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".ppm")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SUPPORTED_SUFFIXES = RASTER_SUFFIXES + DICOM_SUFFIXES + VOLUME_SUFFIXES
# Name of the rule above, recorded in provenance beside the features it shaped.
INTENSITY_CONVENTION = "raster-on-8-bit-scale"
RASTER_SCALE_BITS = 8


class ColourImageWarning(UserWarning):
    """A colour image whose channels differ was reduced to greyscale (burned-in colour overlays?)."""


class IntensityConventionWarning(UserWarning):
    """A high-bit-depth raster uses no more than 8 bits: probably 8-bit data saved without scaling."""


def file_suffix(path: str | os.PathLike[str]) -> str:
    """Lower-case suffix of a file, treating ``.nii.gz`` as one suffix."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def file_stem(path: str | os.PathLike[str]) -> str:
    """File name without its suffix (``scan.nii.gz`` -> ``scan``)."""
    name = Path(path).name
    suffix = file_suffix(path)
    return name[: len(name) - len(suffix)] if suffix else name


def read_image(
    path: str | os.PathLike[str],
    *,
    as_labels: bool = False,
    reference: ImageArray | None = None,
    reference_path: str | os.PathLike[str] | None = None,
) -> ImageArray:
    """Read one image or mask file (or a folder holding one DICOM series) into an array.

    Args:
        path: the file; its format is chosen from the suffix (a file without a known suffix is
            tried as DICOM when it carries the ``DICM`` preamble). A folder is read as one DICOM
            series (:mod:`dlradiomics.io.dicom_series`).
        as_labels: read a label mask: palette PNGs keep their palette indices, and a colour file
            whose channels differ is an error rather than a greyscale conversion.
        reference: for a mask, its image as read; a DICOM-SEG mask is laid onto this image's
            slices (:mod:`dlradiomics.io.dicom_seg`) and cannot be read without it.
        reference_path: the reference image's path, for messages.

    Returns:
        The pixels and spacing (and, for DICOM, NIfTI, NRRD and MetaImage, the geometry).
        Colour images are reduced to greyscale; a :class:`ColourImageWarning` is issued when
        the channels differ.

    Raises:
        ImageReadError: the file is missing, of an unknown format, unreadable or corrupt.
    """
    path = Path(path)
    if path.is_dir():
        return _read_guarded(path, "DICOM folder", lambda: read_series(path, as_labels))
    if not path.is_file():
        raise ImageReadError(path, "file not found", kind="missing")
    suffix = file_suffix(path)
    if suffix in RASTER_SUFFIXES:
        reader = lambda: _read_raster(path, as_labels)  # noqa: E731
    elif suffix in DICOM_SUFFIXES or (suffix not in VOLUME_SUFFIXES and _has_dicom_preamble(path)):
        reader = lambda: _read_dicom(path, as_labels, reference, reference_path)  # noqa: E731
    elif suffix in VOLUME_SUFFIXES:
        reader = lambda: _read_volume(path, as_labels)  # noqa: E731
    else:
        raise ImageReadError(
            path, f"unknown image format {suffix or '(no suffix)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}, "
            "or a folder holding one DICOM series", kind="unsupported")
    return _read_guarded(path, suffix or "file", reader)


def _read_guarded(path: Path, what: str, reader) -> ImageArray:
    """Run one reader; every library fails differently on a corrupt file, so report them all alike."""
    try:
        result = reader()
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(path, f"cannot read {what}: {type(exc).__name__}: {exc}") from exc
    if result.array.size == 0:
        raise ImageReadError(path, "file holds no pixels")
    return result


def _has_dicom_preamble(path: Path) -> bool:
    with open(path, "rb") as stream:
        header = stream.read(132)
    return len(header) == 132 and header[128:132] == b"DICM"


def _reduce_channels(array: np.ndarray, path: Path, as_labels: bool) -> np.ndarray:
    """Greyscale from a trailing channel axis (RGB, RGBA, grey + alpha)."""
    colour = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]
    if all(np.array_equal(colour[..., 0], colour[..., k]) for k in range(1, colour.shape[-1])):
        return colour[..., 0]
    if as_labels:
        raise ImageReadError(
            path, "mask is a colour image whose channels differ; save the labels as a single-channel image"
        )
    warnings.warn(
        f"{path}: colour image with differing channels reduced to greyscale (luminance)",
        ColourImageWarning,
        stacklevel=4,
    )
    from skimage.color import rgb2gray

    # rgb2gray keeps float input on its own scale, so the original intensity range survives.
    return rgb2gray(colour.astype(np.float64))


def _raster_bits(frame, opened) -> int | None:
    """Bits per sample of an integer Pillow frame; ``None`` for floating-point samples."""
    mode = frame.mode
    if mode == "F":
        return None
    if mode == "1":
        return 1
    if mode.startswith("I;16"):
        return 16
    if mode == "I":
        # Pillow opens 16-bit PGM (rescaled to 16 bits from its maxval) and 32-bit TIFF as "I".
        tags = getattr(opened, "tag_v2", None)
        bits = tags.get(258) if tags is not None else None
        return int(bits[0] if isinstance(bits, tuple) else bits) if bits else 16
    return 8  # L, P, RGB, RGBA, LA, CMYK ...: 8-bit samples (Pillow reduces 16-bit colour to 8)


def _on_8_bit_scale(array: np.ndarray, bits: int | None, path: Path) -> np.ndarray:
    """The intensity convention for one raster (see the module docstring)."""
    if bits is None or bits == RASTER_SCALE_BITS:
        return array
    if bits > RASTER_SCALE_BITS and array.size and array.max() <= 255:
        warnings.warn(
            f"{path}: {bits}-bit image whose largest value is {array.max()}: probably 8-bit data saved "
            f"without scaling; read on the 8-bit scale by the intensity convention (value * 255 / "
            f"{2 ** bits - 1}), so it is nearly black",
            IntensityConventionWarning,
            stacklevel=4,
        )
    return array.astype(np.float64) * (255.0 / (2**bits - 1))


def _read_raster(path: Path, as_labels: bool) -> ImageArray:
    from PIL import Image, ImageSequence

    with Image.open(path) as opened:
        frames, bits = [], None
        for frame in ImageSequence.Iterator(opened):
            if frame.mode == "P" and not as_labels:
                frame = frame.convert("RGBA" if "transparency" in frame.info else "RGB")
            elif frame.mode in ("CMYK", "YCbCr", "HSV", "LAB"):
                frame = frame.convert("RGB")
            bits = _raster_bits(frame, opened) if bits is None else bits
            frames.append(np.asarray(frame))
    planes = [_reduce_channels(frame, path, as_labels) if frame.ndim == 3 else frame for frame in frames]
    array = planes[0] if len(planes) == 1 else np.stack(planes)
    stored_dtype = str(array.dtype)
    if not as_labels:
        array = _on_8_bit_scale(array, bits, path)
    return ImageArray(array=array, spacing=(1.0,) * array.ndim, spacing_unit="pixel", dtype=stored_dtype,
                      bit_depth=bits)


def _read_dicom(path: Path, as_labels: bool, reference: ImageArray | None, reference_path) -> ImageArray:
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    dataset = pydicom.dcmread(path)
    if is_segmentation(dataset):
        return read_segmentation(path, reference if as_labels else None, reference_path)
    if "PixelData" not in dataset:
        raise ImageReadError(path, "DICOM file has no pixel data")
    pixels = dataset.pixel_array
    stored_dtype = str(pixels.dtype)
    samples = int(dataset.get("SamplesPerPixel", 1))
    if samples > 1:
        pixels = _reduce_channels(pixels, path, as_labels)
    elif not as_labels:
        # Stored values -> modality units (CT Hounsfield etc.), then the display window the
        # acquisition chose, as DICOM PS3.4 defines the greyscale pipeline.
        pixels = apply_modality_lut(pixels, dataset)
        pixels = apply_voi_lut(pixels, dataset)
        if dataset.get("PhotometricInterpretation", "") == "MONOCHROME1":
            # MONOCHROME1 means low values are white; flip so that bright is always high.
            pixels = pixels.min() + pixels.max() - pixels
    in_plane = dataset.get("PixelSpacing") or dataset.get("ImagerPixelSpacing")
    spacing_unit = "mm" if in_plane else "pixel"
    in_plane = in_plane or (1.0, 1.0)
    spacing: tuple[float, ...] = (float(in_plane[0]), float(in_plane[1]))
    if pixels.ndim == 3:
        between = dataset.get("SpacingBetweenSlices") or dataset.get("SliceThickness") or 1.0
        spacing = (float(between),) + spacing
    bits_stored = int(dataset.get("BitsStored", 0) or 0) or None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    # A single-frame file is one instance a DICOM-SEG can refer to; multi-frame files are not mapped.
    instance = (str(dataset.SOPInstanceUID),) if frames == 1 and "SOPInstanceUID" in dataset else None
    return ImageArray(array=np.asarray(pixels), spacing=spacing, spacing_unit=spacing_unit, dtype=stored_dtype,
                      bit_depth=bits_stored, series_uid=str(dataset.get("SeriesInstanceUID", "")) or None,
                      instance_uids=instance)


def _read_volume(path: Path, as_labels: bool) -> ImageArray:
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    origin, direction, spacing = geometry_of(image)
    if image.GetNumberOfComponentsPerPixel() > 1:
        array = _reduce_channels(array, path, as_labels)
    if image.GetDimension() > 3:
        raise ImageReadError(
            path, f"{image.GetDimension()}D image; only 2D images and 3D volumes are supported", kind="unsupported"
        )
    if array.ndim == 3 and array.shape[0] == 1:
        # A 2D image stored as a one-slice volume (common for NIfTI exports of 2D data).
        array, spacing = array[0], spacing[1:]
    return ImageArray(array=array, spacing=spacing, spacing_unit="mm", dtype=str(array.dtype), origin=origin,
                      direction=direction)

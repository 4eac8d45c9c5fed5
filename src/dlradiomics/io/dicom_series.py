"""A folder of DICOM slices (one series) read into one volume with its geometry.

SimpleITK's GDCM series reader groups the folder's files by SeriesInstanceUID and sorts a series'
slices by their position along the slice normal (ImagePositionPatient projected on the cross
product of the ImageOrientationPatient row and column directions); it then reads the pixels in
modality units (RescaleSlope and RescaleIntercept applied slice by slice) and the volume's
geometry (origin, spacing, direction). What GDCM lets through with a warning, or not at all, is
checked here from the headers (pydicom) and refused with a message naming the folder: several
series in one folder, slices of differing orientation or size, two slices at one position, and a
gap between slices (a missing slice), which would otherwise give a volume whose spacing is wrong.

A series is read in modality units without the display window (VOI LUT) that a single DICOM file
gets (:func:`dlradiomics.io.readers.read_image`): MRI series often carry a window per slice, and
applying those would give the slices of one volume different intensity scales. The values are
then those of the series' NIfTI conversion (dcm2niix, ITK-SNAP), so a folder and its NIfTI copy
give the same features.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlradiomics.io.errors import ImageReadError
from dlradiomics.io.image_array import ImageArray, geometry_of

# Slice gaps may differ by this fraction of their median (rounded positions in the headers);
# a missing slice doubles one gap and is far beyond it.
SLICE_GAP_TOLERANCE = 0.01
# Two slices whose directions differ by more than this (cosine components) are not one stack.
ORIENTATION_TOLERANCE = 1e-4


@dataclass(frozen=True)
class DicomSeries:
    """The slices of one series in a folder, in the order GDCM sorted them (along the normal).

    Args:
        folder: the folder.
        series_uid: the SeriesInstanceUID every file shares.
        files: the slice files, sorted by position along the slice normal.
        instance_uids: SOPInstanceUID of each slice, in the order of ``files``.
    """

    folder: Path
    series_uid: str
    files: tuple[str, ...]
    instance_uids: tuple[str, ...]


def folder_holds_dicom(folder: str | Path) -> bool:
    """Whether a folder holds at least one DICOM file (one with the ``DICM`` preamble).

    A quick check for manifest validation: it reads 132 bytes of files until one is found.

    Raises:
        OSError: the folder cannot be listed.
    """
    for entry in os.scandir(folder):
        if not entry.is_file():
            continue
        try:
            with open(entry.path, "rb") as stream:
                header = stream.read(132)
        except OSError:
            continue  # an unreadable file is not evidence either way; reading the series names it
        if len(header) == 132 and header[128:132] == b"DICM":
            return True
    return False


def find_series(folder: str | Path) -> DicomSeries:
    """The one DICOM series of ``folder``, its slices sorted and checked.

    Args:
        folder: a folder holding the slices of one series (other files are ignored).

    Raises:
        ImageReadError: the folder holds no DICOM series, several series (named with their UID,
            file count and description), or slices that do not form one evenly spaced stack.
    """
    import SimpleITK as sitk

    folder = Path(folder)
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise ImageReadError(folder, "the folder holds no DICOM series (no DICOM file with a SeriesInstanceUID)",
                             kind="unsupported")
    if len(series_ids) > 1:
        described = "; ".join(_describe_series(folder, uid) for uid in series_ids)
        raise ImageReadError(
            folder,
            f"the folder holds {len(series_ids)} DICOM series ({described}); a manifest image folder must hold "
            "one series: move each series into its own folder",
        )
    series_uid = series_ids[0]
    files = tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid))
    headers = [_read_header(Path(name)) for name in files]
    _check_stack(folder, files, headers)
    return DicomSeries(folder=folder, series_uid=str(series_uid), files=files,
                       instance_uids=tuple(str(header.SOPInstanceUID) for header in headers))


def read_series(folder: str | Path, as_labels: bool) -> ImageArray:
    """Read the series of ``folder`` into an :class:`ImageArray`.

    Args:
        folder: a folder of DICOM slices of one series.
        as_labels: read a label mask (no MONOCHROME1 inversion).

    Returns:
        The (slices, rows, cols) volume in modality units, its spacing in millimetres (slice gap
        first), origin and direction, the series UID and each slice's SOPInstanceUID.

    Raises:
        ImageReadError: as :func:`find_series`, or a slice cannot be read.
    """
    import SimpleITK as sitk

    series = find_series(folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(series.files))
    image = reader.Execute()
    array = sitk.GetArrayFromImage(image)
    first = _read_header(Path(series.files[0]))
    stored_dtype = _stored_dtype(first)
    if not as_labels and str(first.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        # MONOCHROME1 means low values are white; flip so that bright is always high (as read_image does).
        array = array.min() + array.max() - array
    if array.ndim == 2:  # a series of one slice
        array = array[np.newaxis]
    origin, direction, spacing = geometry_of(image)
    bits_stored = int(first.get("BitsStored", 0) or 0) or None
    return ImageArray(array=array, spacing=spacing, spacing_unit="mm", dtype=stored_dtype, bit_depth=bits_stored,
                      origin=origin, direction=direction, series_uid=series.series_uid,
                      instance_uids=series.instance_uids)


def _read_header(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as error:  # noqa: BLE001 - any pydicom failure is a broken slice
        raise ImageReadError(path, f"cannot read the DICOM header: {type(error).__name__}: {error}") from error


def _stored_dtype(header) -> str:
    bits = int(header.get("BitsAllocated", 16) or 16)
    signed = int(header.get("PixelRepresentation", 0) or 0) == 1
    return f"{'int' if signed else 'uint'}{bits}"


def _describe_series(folder: Path, series_uid: str) -> str:
    import SimpleITK as sitk

    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid)
    description = ""
    if files:
        try:
            description = str(_read_header(Path(files[0])).get("SeriesDescription", "") or "")
        except ImageReadError:
            description = ""
    return f"{series_uid}: {len(files)} file(s)" + (f", '{description}'" if description else "")


def _check_stack(folder: Path, files: tuple[str, ...], headers: list) -> None:
    """Refuse slices that are not one evenly spaced stack of equal planes."""
    sizes = {(int(h.get("Rows", 0)), int(h.get("Columns", 0))) for h in headers}
    if len(sizes) > 1:
        raise ImageReadError(folder, f"the series' slices differ in size: {sorted(sizes)}")
    if len(headers) < 2:
        return
    orientations = []
    positions = []
    for name, header in zip(files, headers):
        orientation, position = header.get("ImageOrientationPatient"), header.get("ImagePositionPatient")
        if orientation is None or position is None:
            raise ImageReadError(
                Path(name), "slice without ImageOrientationPatient or ImagePositionPatient: the slices of the "
                f"series in {folder} cannot be placed in space", kind="unsupported")
        orientations.append(np.asarray([float(v) for v in orientation]))
        positions.append(np.asarray([float(v) for v in position]))
    reference = orientations[0]
    for name, orientation in zip(files, orientations):
        if np.abs(orientation - reference).max() > ORIENTATION_TOLERANCE:
            raise ImageReadError(
                folder, f"slice {Path(name).name} has another orientation ({list(orientation)}) than "
                f"{Path(files[0]).name} ({list(reference)}): the folder is not one stack of parallel slices")
    normal = np.cross(reference[:3], reference[3:])
    along = np.array([float(position @ normal) for position in positions])
    gaps = np.diff(along)
    if np.any(np.abs(gaps) < 1e-6):
        index = int(np.flatnonzero(np.abs(gaps) < 1e-6)[0])
        raise ImageReadError(
            folder, f"slices {Path(files[index]).name} and {Path(files[index + 1]).name} lie at the same position "
            f"({along[index]:g} mm along the slice normal): a repeated slice or two acquisitions in one series")
    median = float(np.median(np.abs(gaps)))
    uneven = np.abs(np.abs(gaps) - median) > SLICE_GAP_TOLERANCE * median
    if np.any(uneven):
        index = int(np.flatnonzero(uneven)[0])
        raise ImageReadError(
            folder, f"the gap between slices {Path(files[index]).name} and {Path(files[index + 1]).name} is "
            f"{abs(gaps[index]):g} mm where the series' slices are {median:g} mm apart: a slice is missing "
            "(or the series mixes stacks)")

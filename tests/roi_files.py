"""Writers of small image / mask files in every format the io room reads, for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def lesion_image(shape=(40, 50), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A textured uint8 image with a brighter square lesion, and its 0/1 mask."""
    rng = np.random.default_rng(seed)
    image = rng.integers(20, 120, size=shape, dtype=np.uint8)
    mask = np.zeros(shape, dtype=np.uint8)
    mask[10:25, 15:35] = 1
    image[mask == 1] += 100
    return image, mask


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def write_dicom(
    path: Path,
    stored: np.ndarray,
    *,
    slope: float | None = None,
    intercept: float | None = None,
    window: tuple[float, float] | None = None,
    photometric: str = "MONOCHROME2",
    pixel_spacing=(0.5, 0.7),
) -> Path:
    """A minimal valid DICOM file (secondary capture) holding ``stored`` (uint16, 2D or 3D)."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "OT"
    dataset.PatientID = "P1"
    stored = np.ascontiguousarray(stored.astype(np.uint16))
    if stored.ndim == 3:
        dataset.NumberOfFrames = stored.shape[0]
    dataset.Rows, dataset.Columns = stored.shape[-2:]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 0
    dataset.PixelSpacing = list(pixel_spacing)
    if slope is not None:
        dataset.RescaleSlope = slope
        dataset.RescaleIntercept = intercept or 0
        dataset.RescaleType = "US"
    if window is not None:
        dataset.WindowCenter, dataset.WindowWidth = window
    dataset.PixelData = stored.tobytes()
    pydicom.dcmwrite(path, dataset, enforce_file_format=True)
    return path


def write_volume(path: Path, volume: np.ndarray, spacing_xyz=(0.8, 0.9, 3.0)) -> Path:
    """A NIfTI / NRRD / MHA volume (slices, rows, cols) via SimpleITK."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(spacing_xyz[: image.GetDimension()])
    sitk.WriteImage(image, str(path))
    return path

"""Writers of DICOM series (a folder of slices) and DICOM-SEG masks for the tests, with real headers."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np


def orientation_rotated(degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column direction cosines of an axial plane rotated about the patient's z axis."""
    angle = np.deg2rad(degrees)
    row = np.array([np.cos(angle), np.sin(angle), 0.0])
    col = np.array([-np.sin(angle), np.cos(angle), 0.0])
    return row, col


def write_series(
    folder: Path,
    stored: np.ndarray,
    *,
    spacing=(3.0, 0.7, 0.8),
    origin=(-120.0, -80.0, 40.0),
    orientation: tuple[np.ndarray, np.ndarray] | None = None,
    slopes=None,
    intercepts=None,
    series_uid: str | None = None,
    shuffle_seed: int | None = 0,
    skip: tuple[int, ...] = (),
    name_prefix: str = "IM",
) -> list:
    """Write ``stored`` (slices, rows, cols; uint16) as an MR series, one file per slice.

    Slice k lies at ``origin + k * spacing[0] * normal``; the files are named in a shuffled order
    (``shuffle_seed``), so that only the headers give the slice order. Returns the datasets in
    slice order (those in ``skip`` are not written).
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    row, col = orientation if orientation is not None else (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    normal = np.cross(row, col)
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = generate_uid(), generate_uid()
    order = list(range(stored.shape[0]))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    datasets = [None] * stored.shape[0]
    for file_number, k in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{name_prefix}{file_number:04d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.PatientName = "MR", "P1", "Test^Patient"
        ds.PatientBirthDate, ds.PatientSex, ds.AccessionNumber, ds.ReferringPhysicianName = "", "F", "", ""
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyID, ds.StudyDate, ds.StudyTime, ds.SeriesNumber, ds.InstanceNumber = "1", "20260101", "120000", 1, k + 1
        ds.Manufacturer, ds.SeriesDescription = "test", "T2 AX"
        ds.ImagePositionPatient = [float(v) for v in np.asarray(origin) + k * spacing[0] * normal]
        ds.ImageOrientationPatient = [float(v) for v in (*row, *col)]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[2])]
        ds.SliceThickness = float(spacing[0])
        ds.Rows, ds.Columns = stored.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope = float(slopes[k]) if slopes is not None else 1.0
        ds.RescaleIntercept = float(intercepts[k]) if intercepts is not None else 0.0
        ds.PixelData = np.ascontiguousarray(stored[k].astype(np.uint16)).tobytes()
        datasets[k] = ds
        if k not in skip:
            pydicom.dcmwrite(ds.filename, ds, enforce_file_format=True)
    return datasets


def write_seg(path: Path, source_datasets: list, mask: np.ndarray, segments: int = 1) -> Path:
    """A binary DICOM-SEG (highdicom) of ``mask`` (slices, rows, cols; values 0..segments) on the source slices."""
    import highdicom
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    descriptions = [
        highdicom.seg.SegmentDescription(
            segment_number=number,
            segment_label=f"lesion {number}",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for number in range(1, segments + 1)
    ]
    seg = highdicom.seg.Segmentation(
        source_images=source_datasets,
        pixel_array=np.asarray(mask, dtype=np.uint8),
        segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=2,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="dlradiomics tests",
        manufacturer_model_name="tests",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(path)
    return path

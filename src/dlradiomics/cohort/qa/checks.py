"""Per-image QA checks: readability, sizes, lesion area and shape, intensity range, hashes.

A check never raises: whatever goes wrong with one row is recorded in its ``flags`` and ``error``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from dlradiomics.io import ImageReadError, read_image, roi_from_arrays
from dlradiomics.progress import Progress

QA_COLUMNS = [
    "roi_id", "patient_id", "modality", "label", "image", "mask",
    "image_rows", "image_cols", "mask_rows", "mask_cols", "slice_index",
    "mask_pixels", "lesion_fraction", "components", "image_min", "image_max",
    "roi_min", "roi_max", "roi_mean", "roi_std", "pixel_sha256", "phash",
    "exact_duplicates", "near_duplicates", "flags", "error",
]  # fmt: skip

# Fields a record carries beside the QA_COLUMNS, for a cache to answer `load_roi`'s question (see
# `dlradiomics.cohort.qa.cache`): the first error reading the row raised, as ``(path, problem, kind)``,
# and whether the check failed on something that is not an `ImageReadError`.
READ_ERROR_FIELD = "_read_error"
UNEXPECTED_FIELD = "_unexpected"

_READ_ERROR_FLAGS = {"size_mismatch", "geometry_mismatch", "empty_mask", "label_missing", "bad_slice", "mask_is_image",
                     "swapped_image_mask",
                     "full_frame_mask", "inverted_mask", "non_finite_pixels"}


def check_rows(rows: list[dict], tiny_mask_pixels: int, n_jobs: int, *, progress: bool = False) -> list[dict]:
    """One QA record per cohort row (a dict with the :data:`QA_COLUMNS`, ``flags`` as a list).

    Args:
        rows: cohort table rows as dicts.
        tiny_mask_pixels: a lesion with fewer pixels is flagged ``tiny_mask``.
        n_jobs: worker processes (1 = in this process).
        progress: show the count of images checked and the time left (`dlradiomics.progress`).
    """
    with Progress(len(rows), "QA", unit="image", enabled=progress) as bar:
        if n_jobs <= 1 or len(rows) < 2:
            records = []
            for row in rows:
                records.append(_check_row(row, tiny_mask_pixels))
                bar.update()
            return records
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial

        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            # Chunks amortise the inter-process traffic; each check takes only milliseconds.
            chunk = max(1, len(rows) // (n_jobs * 8))
            records = []
            for record in pool.map(partial(_check_row, tiny_mask_pixels=tiny_mask_pixels), rows, chunksize=chunk):
                records.append(record)
                bar.update()
            return records


def _check_row(row: dict, tiny_mask_pixels: int) -> dict:
    record = {column: row.get(column) for column in ("roi_id", "patient_id", "modality", "label", "image", "mask")}
    record.update(flags=[], error=None, phash=None, pixel_sha256=None, exact_duplicates="", near_duplicates="")
    record.update({READ_ERROR_FIELD: None, UNEXPECTED_FIELD: False})
    try:
        _check_files(row, record, tiny_mask_pixels)
    except ImageReadError as error:
        record["flags"].append(error.kind if error.kind in _READ_ERROR_FLAGS else "qa_error")
        record["error"] = str(error)
        _note_read_error(record, error)
    except Exception as error:  # QA reports a broken case, whatever broke; it never stops the run
        record["flags"].append("qa_error")
        record["error"] = f"{type(error).__name__}: {error}"
        record[UNEXPECTED_FIELD] = True
    return record


def _note_read_error(record: dict, error: ImageReadError) -> None:
    """Keep the first error reading the row raised: the one `load_roi` would have raised (it reads the
    image, then the mask, then makes the ROI, in the order `_check_files` does)."""
    if record[READ_ERROR_FIELD] is None:
        record[READ_ERROR_FIELD] = (error.path, error.problem, error.kind)


def _check_files(row: dict, record: dict, tiny_mask_pixels: int) -> None:
    from scipy import ndimage

    image = _read_or_flag(row["image"], record, "unreadable_image", as_labels=False)
    # A DICOM-SEG mask is laid onto its image's slices, so it is read with the image.
    mask = _read_or_flag(row["mask"], record, "unreadable_mask", as_labels=True, reference=image,
                         reference_path=row["image"])
    if image is not None:
        record["image_rows"], record["image_cols"] = image.array.shape[-2:]
        pixels = np.ascontiguousarray(image.array, dtype=np.float64)
        # Hash the decoded pixels with their shape, so the same picture in another file format matches.
        record["pixel_sha256"] = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()
        finite = bool(np.isfinite(pixels).all())
        record["image_min"], record["image_max"] = float(np.nanmin(pixels)), float(np.nanmax(pixels))
        if record["image_min"] == record["image_max"]:
            record["flags"].append("flat_image")
        if image.array.ndim == 2 and finite:
            record["phash"] = _phash(image.array)  # NaN pixels have no perceptual hash (reading flags them)
    if mask is not None:
        record["mask_rows"], record["mask_cols"] = mask.array.shape[-2:]
    if image is None or mask is None:
        return

    roi = roi_from_arrays(
        image,
        mask,
        row["image"],
        row["mask"],
        mask_label=_optional_int(row.get("mask_label")),
        slice_index=_optional_int(row.get("slice")),
    )
    if record["phash"] is None:
        record["phash"] = _phash(roi.image)
    lesion = roi.mask.astype(bool)
    inside = roi.image[lesion]
    record["slice_index"] = roi.slice_index
    record["mask_pixels"] = int(lesion.sum())
    record["lesion_fraction"] = float(lesion.mean())
    # 8-connectivity: pixels touching at a corner are one region, as a reader would see them.
    _, record["components"] = ndimage.label(lesion, structure=np.ones((3, 3), dtype=bool))
    record["roi_min"], record["roi_max"] = float(inside.min()), float(inside.max())
    record["roi_mean"], record["roi_std"] = float(inside.mean()), float(inside.std())
    if record["mask_pixels"] < tiny_mask_pixels:
        record["flags"].append("tiny_mask")
    if record["components"] > 1:
        record["flags"].append("several_components")
    if lesion[0, :].any() or lesion[-1, :].any() or lesion[:, 0].any() or lesion[:, -1].any():
        record["flags"].append("touches_border")
    if record["roi_min"] == record["roi_max"]:
        record["flags"].append("flat_roi")


def _read_or_flag(path, record: dict, flag: str, *, as_labels: bool, reference=None, reference_path=None):
    try:
        return read_image(path, as_labels=as_labels, reference=reference, reference_path=reference_path)
    except ImageReadError as error:
        record["flags"].append(flag)
        record["error"] = "; ".join(filter(None, [record["error"], str(error)]))
        _note_read_error(record, error)
        return None


def _optional_int(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _phash(array: np.ndarray) -> int:
    """64-bit perceptual hash of a 2D image, as an integer (for fast Hamming distances)."""
    import imagehash
    from PIL import Image

    values = np.asarray(array, dtype=np.float64)
    low, high = values.min(), values.max()
    scaled = np.zeros(values.shape, np.uint8) if high == low else ((values - low) / (high - low) * 255).astype(np.uint8)
    bits = imagehash.phash(Image.fromarray(scaled)).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")

"""What every public-data loader shares: required files, skipped items, the manifest column order."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dlradiomics.io.atomic import write_png_atomic

logger = logging.getLogger("dlradiomics.cohort.loaders")

MANIFEST_FIRST_COLUMNS = ["patient_id", "modality", "image", "mask", "label"]


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a ``FileNotFoundError`` saying which part of the layout is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a ``FileNotFoundError`` saying which part of the layout is missing."""
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def manifest_frame(rows: list[dict], skipped: list[dict], source: str) -> pd.DataFrame:
    """Rows -> a manifest DataFrame with the manifest columns first.

    Skipped items are kept in ``frame.attrs["skipped"]`` (a list of ``{"item", "reason"}``) and logged
    at INFO level, so that a caller can report them; they never disappear silently.
    """
    frame = pd.DataFrame.from_records(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=MANIFEST_FIRST_COLUMNS)
    frame = frame[MANIFEST_FIRST_COLUMNS + [c for c in frame.columns if c not in MANIFEST_FIRST_COLUMNS]]
    frame.attrs["skipped"] = list(skipped)
    for item in skipped:
        logger.info("%s: skipped %s: %s", source, item["item"], item["reason"])
    return frame


def write_binary_mask(path: Path, mask: np.ndarray) -> Path:
    """Save a lesion mask as an 8-bit PNG holding 0 and 255 (viewable, and read back as non-zero = lesion)."""
    from PIL import Image

    return write_png_atomic(Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)), path)

"""Rows of the shipped demo manifest with absolute image and mask paths, for small study tests."""

from __future__ import annotations

import pandas as pd

from dlradiomics.demo.demo import DEMO_MANIFEST


def with_absolute_paths(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with ``image`` and ``mask`` resolved against the demo manifest's folder."""
    rows = rows.copy()
    for column in ("image", "mask"):
        rows[column] = [str(DEMO_MANIFEST.parent / path) for path in rows[column]]
    return rows


def demo_us_rows(n_per_class: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first ``n_per_class`` US patients of each class, and all other US rows (both with absolute paths)."""
    manifest = pd.read_csv(DEMO_MANIFEST)
    us = manifest[manifest["modality"] == "US"]
    chosen = pd.concat([us[us["label"] == label].head(n_per_class) for label in (0, 1)])
    return with_absolute_paths(chosen), with_absolute_paths(us[~us["patient_id"].isin(chosen["patient_id"])])

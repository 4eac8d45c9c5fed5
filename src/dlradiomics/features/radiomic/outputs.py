"""The files `dlradiomics extract` writes: feature tables, failures, intensity profiles, provenance."""

from __future__ import annotations

import os
from pathlib import Path

from dlradiomics.features.radiomic.extraction import ExtractionResult
from dlradiomics.io.atomic import write_csv_atomic, write_json_atomic, write_parquet_atomic


def write_extraction_outputs(result: ExtractionResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the feature table (Parquet and CSV), the failures, the intensity profiles and the provenance.

    Each file is written to a temporary file and moved into place, so an interrupted write (a full
    disk, a kill) leaves the previous version intact.

    Args:
        result: what :func:`~dlradiomics.features.radiomic.extraction.extract_radiomic_features` returned.
        out_dir: the folder to write into (created if needed).

    Returns:
        ``{"features", "features_csv", "failures", "intensity_profiles", "provenance"}`` -> path written.
    """
    out = Path(out_dir)
    paths = {
        "features": out / "radiomic_features.parquet",
        "features_csv": out / "radiomic_features.csv",
        "failures": out / "failures.csv",
        "intensity_profiles": out / "intensity_profiles.csv",
        "provenance": out / "provenance.json",
    }
    write_parquet_atomic(result.features, paths["features"])
    write_csv_atomic(result.features, paths["features_csv"])
    write_csv_atomic(result.failures, paths["failures"])
    write_csv_atomic(result.intensity_profiles, paths["intensity_profiles"])
    write_json_atomic(paths["provenance"], result.provenance, default=str)
    return paths

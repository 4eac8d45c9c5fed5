"""The files `dlradiomics extract` writes: feature tables, failures, intensity profiles, provenance."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv

from dlradiomics.features.radiomic.extraction import ExtractionResult
from dlradiomics.io.atomic import write_atomic, write_csv_atomic, write_json_atomic, write_parquet_atomic


def _write_feature_csv(frame: pd.DataFrame, path: Path) -> None:
    # Arrow's CSV writer: several times faster than pandas' on a cohort's wide feature table (the
    # better part of a cached re-run otherwise), and its shortest round-trip float formatting
    # reads back to the same numbers.
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column mixing types: pandas writes anything
        write_csv_atomic(frame, path)
        return
    write_atomic(path, lambda temporary: pyarrow.csv.write_csv(table, temporary))


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
    _write_feature_csv(result.features, paths["features_csv"])
    write_csv_atomic(result.failures, paths["failures"])
    write_csv_atomic(result.intensity_profiles, paths["intensity_profiles"])
    write_json_atomic(paths["provenance"], result.provenance, default=str)
    return paths

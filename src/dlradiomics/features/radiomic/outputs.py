"""The files `dlradiomics extract` writes: feature tables, failures, intensity profiles, provenance."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dlradiomics.features.radiomic.extraction import ExtractionResult
from dlradiomics.store import write_atomically


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
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "features": out / "radiomic_features.parquet",
        "features_csv": out / "radiomic_features.csv",
        "failures": out / "failures.csv",
        "intensity_profiles": out / "intensity_profiles.csv",
        "provenance": out / "provenance.json",
    }
    write_atomically(paths["features"], lambda tmp: result.features.to_parquet(tmp, index=False))
    write_atomically(paths["features_csv"], lambda tmp: result.features.to_csv(tmp, index=False))
    write_atomically(paths["failures"], lambda tmp: result.failures.to_csv(tmp, index=False))
    write_atomically(paths["intensity_profiles"], lambda tmp: result.intensity_profiles.to_csv(tmp, index=False))
    provenance = json.dumps(result.provenance, indent=2, default=str) + "\n"
    write_atomically(paths["provenance"], lambda tmp: Path(tmp).write_text(provenance, encoding="utf-8"))
    return paths

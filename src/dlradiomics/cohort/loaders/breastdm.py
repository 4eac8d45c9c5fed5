"""BreastDM DCE-MRI sample slices (Zhao et al., Comput Biol Med 2023), as in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dlradiomics.cohort.loaders.common import manifest_frame, require_file


def breastdm_manifest(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Manifest rows for the BreastDM sample slices.

    The samples carry no patient identifier, so each slice ``id`` becomes its own patient
    (``BreastDM-malignant_4111``). Neighbouring ids look like slices of one patient: ``dlradiomics
    qa`` finds 7 near-duplicate pairs among them (``benign_305`` / ``benign_306`` have identical
    perceptual hashes). Use these samples for smoke tests of the MRI path, never for a
    performance claim. ``view`` stays empty: the samples record no sequence, phase or plane.

    Args:
        root: folder holding ``labels.csv`` (``id, pathology, image, mask, mask_pixels``) and the
            ``images/`` and ``masks/`` it names.

    Returns:
        One row per slice (modality ``MRI``), absolute paths, ``mask_pixels`` kept.

    Raises:
        FileNotFoundError: ``labels.csv`` is missing.
    """
    root = Path(root).absolute()
    labels = pd.read_csv(require_file(root / "labels.csv", "BreastDM label table"), dtype={"id": str})
    rows = [
        {
            "patient_id": f"BreastDM-{record.id}",
            "modality": "MRI",
            "image": str(root / record.image),
            "mask": str(root / record.mask),
            "label": str(record.pathology).strip().lower(),
            "mask_pixels": record.mask_pixels,
        }
        for record in labels.itertuples(index=False)
    ]
    return manifest_frame(rows, [], str(root))

"""BUS-BRA (Gómez-Flores et al., Med Phys 2024): breast ultrasound, 1,875 images of 1,064 patients."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dlradiomics.cohort.loaders.common import manifest_frame, require_dir, require_file


def bus_bra_manifest(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Manifest rows for the BUS-BRA data set as published.

    The patient is the data set's ``Case`` (as ``BUSBRA-0001``; several images per patient), the
    modality ``US``. The publishers' patient-level folds are kept: ``fold5`` and ``fold10`` hold the
    ``kFold`` value of ``5-fold-cv.csv`` / ``10-fold-cv.csv`` (the fold in which the image is a test
    image). ``birads``, ``device``, ``histology``, ``side`` and ``case`` are kept as extra columns.
    ``view`` stays empty: BUS-BRA names no scanning plane (its ``Side`` column, left / right /
    single, kept as ``side``, is not one), so a study cannot select BUS-BRA images by view.

    Args:
        root: the BUS-BRA folder (``bus_data.csv``, ``5-fold-cv.csv``, ``10-fold-cv.csv``,
            ``Images/``, ``Masks/``).

    Returns:
        One row per image with absolute paths; write it with
        :func:`dlradiomics.cohort.write_manifest` or validate it with ``Cohort.from_table``.

    Raises:
        FileNotFoundError: a file or folder of the published layout is missing.
    """
    root = Path(root).absolute()
    images = require_dir(root / "Images", "BUS-BRA image folder")
    masks = require_dir(root / "Masks", "BUS-BRA mask folder")
    data = pd.read_csv(require_file(root / "bus_data.csv", "BUS-BRA table"))
    for folds, column in (("5-fold-cv.csv", "fold5"), ("10-fold-cv.csv", "fold10")):
        fold_table = pd.read_csv(require_file(root / folds, "BUS-BRA fold file"), usecols=["ID", "kFold"])
        data = data.merge(fold_table.rename(columns={"kFold": column}), on="ID", how="left", validate="one_to_one")

    rows = []
    for record in data.itertuples(index=False):
        image_id = str(record.ID)
        rows.append(
            {
                "patient_id": f"BUSBRA-{int(record.Case):04d}",
                "modality": "US",
                # Images are bus_0001-l.png and their masks mask_0001-l.png.
                "image": str(images / f"{image_id}.png"),
                "mask": str(masks / f"mask_{image_id.removeprefix('bus_')}.png"),
                "label": str(record.Pathology).strip().lower(),
                "fold5": record.fold5,
                "fold10": record.fold10,
                "case": int(record.Case),
                "side": record.Side,
                "birads": record.BIRADS,
                "device": record.Device,
                "histology": record.Histology,
            }
        )
    frame = manifest_frame(rows, [], str(root))
    for column in ("fold5", "fold10"):
        frame[column] = frame[column].astype("Int64")
    return frame

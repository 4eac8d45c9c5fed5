"""A small generated cohort a CNN can learn: malignant lesions brighter than their background, benign darker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def write_lesion(folder: Path, name: str, seed: int, bright: bool, size: int = 64) -> tuple[str, str]:
    """Speckled background with an elliptical lesion brighter (``bright``) or darker than it; image and mask PNGs."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    centre = size / 2 + rng.uniform(-4, 4, size=2)
    radii = rng.uniform(size / 6, size / 3, size=2)
    lesion = ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1
    image = rng.normal(120, 30, size=(size, size))
    image[lesion] = rng.normal(190 if bright else 50, 25, size=int(lesion.sum()))
    folder.mkdir(parents=True, exist_ok=True)
    image_path, mask_path = folder / f"{name}.png", folder / f"{name}_mask.png"
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(image_path)
    Image.fromarray((lesion * 255).astype(np.uint8)).save(mask_path)
    return str(image_path), str(mask_path)


def learnable_cohort(folder: Path, n_patients: int = 24, images_per_patient: int = 1) -> pd.DataFrame:
    """ROI table (``roi_id, patient_id, modality, image, mask, label``); patients alternate benign/malignant."""
    rows = []
    for patient in range(n_patients):
        label = patient % 2
        for image in range(images_per_patient):
            name = f"p{patient:02d}_{image}"
            image_path, mask_path = write_lesion(folder, name, seed=patient * 10 + image, bright=label == 1)
            rows.append({"roi_id": f"P{patient:02d}/US/{name}", "patient_id": f"P{patient:02d}", "modality": "US",
                         "image": image_path, "mask": mask_path, "label": label})
    return pd.DataFrame(rows)

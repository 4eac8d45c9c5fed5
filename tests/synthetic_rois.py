"""Small generated ultrasound-like ROIs (PNG image + 0/255 mask) and manifests for extraction tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def write_roi_pngs(folder: Path, name: str, seed: int, size: int = 64, lesion_mean: float = 70.0) -> tuple[Path, Path]:
    """Write a speckled image with an elliptical lesion (darker by default) and its mask; return their paths."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    centre = size / 2 + rng.uniform(-4, 4, size=2)
    radii = rng.uniform(size / 6, size / 3, size=2)
    lesion = ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1
    image = rng.normal(140, 35, size=(size, size))
    image[lesion] = rng.normal(lesion_mean, 25, size=int(lesion.sum()))
    folder.mkdir(parents=True, exist_ok=True)
    image_path, mask_path = folder / f"{name}.png", folder / f"{name}_mask.png"
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(image_path)
    Image.fromarray((lesion * 255).astype(np.uint8)).save(mask_path)
    return image_path, mask_path


def synthetic_cohort_table(folder: Path, n_rois: int, size: int = 64) -> pd.DataFrame:
    """A cohort-shaped table (the columns extraction needs) of ``n_rois`` generated ROIs."""
    rows = []
    for index in range(n_rois):
        image_path, mask_path = write_roi_pngs(folder, f"case{index:03d}", seed=index, size=size)
        rows.append(
            {
                "roi_id": f"P{index // 2:03d}/US/case{index:03d}",
                "patient_id": f"P{index // 2:03d}",
                "modality": "US",
                "image": str(image_path),
                "mask": str(mask_path),
                "label": (index // 2) % 2,
            }
        )
    return pd.DataFrame(rows)


def write_manifest_csv(table: pd.DataFrame, path: Path) -> Path:
    """Write the manifest columns of ``table`` as a CSV manifest."""
    table[["patient_id", "modality", "image", "mask", "label"]].to_csv(path, index=False)
    return path

"""A small generated cohort a CNN can learn: malignant lesions brighter than their background, benign darker."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthetic_rois import write_roi_pngs


def learnable_cohort(folder: Path, n_patients: int = 24, images_per_patient: int = 1) -> pd.DataFrame:
    """ROI table (``roi_id, patient_id, modality, image, mask, label``); patients alternate benign/malignant."""
    rows = []
    for patient in range(n_patients):
        label = patient % 2
        for image in range(images_per_patient):
            name = f"p{patient:02d}_{image}"
            image_path, mask_path = write_roi_pngs(folder, name, seed=patient * 10 + image,
                                                   lesion_mean=220.0 if label == 1 else 60.0)
            rows.append({"roi_id": f"P{patient:02d}/US/{name}", "patient_id": f"P{patient:02d}", "modality": "US",
                         "image": str(image_path), "mask": str(mask_path), "label": label})
    return pd.DataFrame(rows)

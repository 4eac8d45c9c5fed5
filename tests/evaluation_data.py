"""Generated patient-level data for the evaluation tests: known signal, several images per patient."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_image_table(
    n_patients: int = 120,
    n_features: int = 6,
    signal: float = 1.5,
    malignant_fraction: float = 0.35,
    max_images: int = 3,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.Series]:
    """Image rows of patients; the first two features shift by ``signal`` for malignant patients.

    Args:
        n_patients: Number of patients.
        n_features: Number of features (block ``US.radiomic``).
        signal: Mean shift of the informative features (0: pure noise).
        malignant_fraction: Share of malignant patients.
        max_images: Each patient has 1..max_images images.
        seed: Random seed.

    Returns:
        ``(X, y)``: X indexed by patient id (repeated per image), y the row labels.
    """
    rng = np.random.default_rng(seed)
    patient_labels = (rng.random(n_patients) < malignant_fraction).astype(int)
    patient_labels[:2] = [0, 1]
    images_per_patient = rng.integers(1, max_images + 1, n_patients)
    patients = np.repeat([f"P{i:04d}" for i in range(n_patients)], images_per_patient)
    labels = np.repeat(patient_labels, images_per_patient)
    patient_effect = np.repeat(rng.normal(0, 0.5, (n_patients, n_features)), images_per_patient, axis=0)
    features = patient_effect + rng.normal(0, 1, (len(patients), n_features))
    features[:, :2] += signal * labels[:, None]
    columns = [f"US.radiomic__f{j}" for j in range(n_features)]
    X = pd.DataFrame(features, columns=columns, index=pd.Index(patients, name="patient_id"))
    return X, pd.Series(labels, index=X.index, name="label")


def make_feature_tables(
    n_patients: int = 90,
    modalities: tuple[str, ...] = ("US", "MG"),
    signal: float = 1.2,
    n_radiomic: int = 8,
    n_deep: int = 12,
    missing_fraction: float = 0.0,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Image-level radiomic and deep feature tables (the architecture's layout) for several modalities.

    Two radiomic and two deep features of every modality carry the label; the first modality is
    present for every patient, later ones are missing for ``missing_fraction`` of patients.

    Args:
        n_patients: Number of patients.
        modalities: Modalities to generate.
        signal: Mean shift of the informative features.
        n_radiomic: Radiomic features per image.
        n_deep: Deep features per image.
        missing_fraction: Share of patients lacking each modality after the first.
        seed: Random seed.

    Returns:
        ``{"radiomic": table, "deep": table}``.
    """
    rng = np.random.default_rng(seed)
    labels = (rng.random(n_patients) < 0.4).astype(int)
    labels[:2] = [0, 1]
    meta_rows = []
    for index, modality in enumerate(modalities):
        for patient in range(n_patients):
            if index > 0 and rng.random() < missing_fraction:
                continue
            for image in range(int(rng.integers(1, 3))):
                meta_rows.append(
                    {
                        "roi_id": f"P{patient:03d}/{modality}/img{image}",
                        "patient_id": f"P{patient:03d}",
                        "modality": modality,
                        "image": f"P{patient:03d}_{modality}_{image}.png",
                        "mask": f"P{patient:03d}_{modality}_{image}_mask.png",
                        "label": int(labels[patient]),
                    }
                )
    meta = pd.DataFrame(meta_rows)
    tables = {}
    for kind, n_features in (("radiomic", n_radiomic), ("deep", n_deep)):
        values = rng.normal(0, 1, (len(meta), n_features))
        values[:, :2] += signal * meta["label"].to_numpy()[:, None]
        prefix = "original_firstorder_f" if kind == "radiomic" else "deep_"
        features = pd.DataFrame(values, columns=[f"{prefix}{j:04d}" for j in range(n_features)])
        tables[kind] = pd.concat([meta, features], axis=1)
    return tables

"""The paper's end-to-end CNN baselines (VGG19, GoogLeNet, ResNet-101, Inception-v3), leakage-free.

Under the paper's protocol (convolutional layers frozen, a new two-class fully connected layer) a
fine-tuned CNN is exactly its cached embeddings plus :class:`EmbeddingHeadClassifier`. Here each
head is trained on the training folds only and predicts the held-out fold, giving out-of-fold
probabilities in the same patient-grouped folds as every other model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from dlradiomics.features.deep.embeddings import compute_embeddings
from dlradiomics.features.deep.head import EmbeddingHeadClassifier
from dlradiomics.features.deep.preprocessing import DEFAULT_MARGIN

PAPER_BASELINES = ("vgg19", "googlenet", "resnet101", "inception_v3")
OOF_COLUMNS = ["patient_id", "fold", "prob", "label"]


def _patient_folds(folds: str | Mapping | pd.Series, table: pd.DataFrame) -> pd.Series:
    if isinstance(folds, str):
        if folds not in table.columns:
            raise ValueError(f"fold column {folds!r} is not in the cohort table")
        per_patient = table.groupby("patient_id")[folds].nunique()
        straddling = per_patient[per_patient > 1].index.tolist()
        if straddling:
            raise ValueError(f"fold column {folds!r} puts patients in several folds: {straddling[:5]}")
        return table.groupby("patient_id")[folds].first()
    series = folds if isinstance(folds, pd.Series) else pd.Series(dict(folds))
    missing = sorted(set(table["patient_id"]) - set(series.index))
    if missing:
        raise ValueError(f"no fold given for patients {missing[:5]}{'...' if len(missing) > 5 else ''}")
    return series


def out_of_fold_head_predictions(embeddings: pd.DataFrame, patient_fold: pd.Series,
                                 head: EmbeddingHeadClassifier) -> pd.DataFrame:
    """Train a copy of ``head`` on all folds but one and predict that one, for every fold.

    Args:
        embeddings: :func:`compute_embeddings` output (meta columns and ``deep_*``).
        patient_fold: fold of each patient, indexed by ``patient_id``.
        head: the unfitted head to clone for each fold.

    Returns:
        One row per patient: ``patient_id, fold, prob`` (mean malignant probability of the
        patient's images), ``label``.
    """
    from sklearn.base import clone

    features = embeddings.filter(regex=r"^deep_\d+$").to_numpy(dtype=np.float32)
    labels = embeddings["label"].to_numpy()
    image_fold = embeddings["patient_id"].map(patient_fold).to_numpy()
    probabilities = np.full(len(embeddings), np.nan)
    for fold in sorted(pd.unique(image_fold)):
        held_out = image_fold == fold
        model = clone(head).fit(features[~held_out], labels[~held_out])
        malignant_column = list(model.classes_).index(1)
        probabilities[held_out] = model.predict_proba(features[held_out])[:, malignant_column]
    per_image = pd.DataFrame({"patient_id": embeddings["patient_id"], "fold": image_fold,
                              "prob": probabilities, "label": labels})
    return (per_image.groupby("patient_id", sort=False)
            .agg(fold=("fold", "first"), prob=("prob", "mean"), label=("label", "max"))
            .reset_index()[OOF_COLUMNS])


def cnn_baseline_oof(cohort, backbone: str, folds: str | Mapping | pd.Series, *,
                     weights: str | os.PathLike[str] | None = "imagenet",
                     store_dir: str | os.PathLike[str] | None = None, epochs: int = 200,
                     learning_rate: float = 0.001, batch_size: int = 32, momentum: float = 0.9,
                     seed: int = 0, margin: float = DEFAULT_MARGIN, device: str | None = None) -> pd.DataFrame:
    """Out-of-fold predictions of a CNN baseline fine-tuned as in the paper (frozen trunk + new head).

    Args:
        cohort: a :class:`~dlradiomics.cohort.Cohort` or its table.
        backbone: registry name, e.g. one of :data:`PAPER_BASELINES`.
        folds: patient-grouped folds: a column of the cohort table (e.g. ``"fold5"``), or a mapping
            / Series from ``patient_id`` to fold.
        weights: backbone weights (see :func:`create_backbone`).
        store_dir: feature store for the embeddings (computed once, reused by every fold).
        epochs: head training epochs (paper: 200).
        learning_rate: SGD learning rate (paper: 0.001).
        batch_size: SGD batch size (paper: 32).
        momentum: SGD momentum.
        seed: seed of the head and of random backbone weights.
        margin: crop margin.
        device: where to compute embeddings.

    Returns:
        ``patient_id, fold, prob, label``: one row per patient with an embedded image.
    """
    table = cohort.table if hasattr(cohort, "table") else cohort
    patient_fold = _patient_folds(folds, table)
    embeddings = compute_embeddings(cohort, backbone, weights, store_dir=store_dir, margin=margin,
                                    device=device, seed=seed)
    head = EmbeddingHeadClassifier(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                                   momentum=momentum, seed=seed)
    result = out_of_fold_head_predictions(embeddings, patient_fold, head)
    result.attrs["failures"] = embeddings.attrs.get("failures")
    result.attrs["model"] = f"cnn:{backbone}"
    return result

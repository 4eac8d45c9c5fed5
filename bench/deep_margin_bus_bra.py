"""Do wider ROI crops make frozen EfficientNet-Lite0 ImageNet features better on BUS-BRA?

For each crop margin (fraction of the lesion box's size added on each side) all 1,875 BUS-BRA ROIs
are embedded (cached in the feature store; the margin is part of the cache key) and evaluated in the
publishers' patient-level 5-fold CV (column ``fold5``), as in ``bench/deep_features_bus_bra.py``:

* deep: StandardScaler + LogisticRegression(C=0.01) on the embeddings;
* radiomic: ``dlradiomics.models.make_pipeline("logistic")`` on the radiomic columns of a
  precomputed radiomic table;
* fusion: the mean of the deep and radiomic patient probabilities (late fusion).

Every model is fitted inside the training folds only. AUCs are patient-level: a patient's
probability is the mean over their images.

Run (from the repository root; nice, each new margin takes minutes on a CPU)::

    nice -n 10 .venv/bin/python bench/deep_margin_bus_bra.py --margins 0.1 0.5 1.0 \
        > scratch/deep_margin_bus_bra.log 2>&1
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline as sk_make_pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.cohort import Cohort
from dlradiomics.cohort.loaders import bus_bra_manifest
from dlradiomics.features.deep import compute_embeddings
from dlradiomics.models import make_pipeline

RADIOMIC_PREFIXES = ("original_", "wavelet", "log-sigma", "square", "squareroot", "logarithm",
                     "exponential", "gradient", "lbp-")


def bus_bra_table(root: Path) -> pd.DataFrame:
    """The validated BUS-BRA cohort table, with the publishers' 5-fold column ``fold5``."""
    cohort = Cohort.from_table(bus_bra_manifest(root), root, source=str(root))
    cohort.raise_for_problems()
    return cohort.table


def out_of_fold(model, features: pd.DataFrame, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Out-of-fold malignancy probabilities; the model is cloned and fitted on each training fold."""
    probabilities = np.full(len(labels), np.nan)
    for fold in np.unique(folds):
        test = folds == fold
        fitted = clone(model).fit(features[~test], labels[~test])
        probabilities[test] = fitted.predict_proba(features[test])[:, 1]
    return probabilities


def per_patient(roi_ids: pd.Index, patients: pd.Series, labels: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """Patient label (max) and probability (mean over images), indexed by patient_id."""
    frame = pd.DataFrame({"patient_id": patients.to_numpy(), "label": labels, "prob": probabilities}, index=roi_ids)
    return frame.groupby("patient_id").agg(label=("label", "max"), prob=("prob", "mean"))


def patient_auc(patients: pd.DataFrame) -> float:
    return roc_auc_score(patients["label"], patients["prob"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--margins", type=float, nargs="+", default=[0.1, 0.5, 1.0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bus-bra"))
    parser.add_argument("--store", type=Path, default=Path("scratch/bus-bra-store"))
    parser.add_argument("--radiomics", type=Path,
                        default=Path("scratch/bus-bra-radiomics/radiomic_features.parquet"))
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--C", type=float, default=0.01, help="inverse regularisation of the deep logistic")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads; on a shared, busy machine one thread is far faster")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    table = bus_bra_table(arguments.data).set_index("roi_id", drop=False)
    folds = table["fold5"].to_numpy()
    print(f"BUS-BRA: {len(table)} images, {table['patient_id'].nunique()} patients", flush=True)

    # Radiomic baseline, fitted once (it does not depend on the margin).
    radiomic = pd.read_parquet(arguments.radiomics).set_index("roi_id").loc[table.index]
    radiomic_columns = [c for c in radiomic.columns if c.startswith(RADIOMIC_PREFIXES)]
    radiomic_x = radiomic[radiomic_columns].set_axis(pd.Index(table["patient_id"], name="patient_id"))
    labels = table["label"].to_numpy().astype(int)
    assert (radiomic["label"].to_numpy().astype(int) == labels).all(), "label mismatch radiomic vs cohort"
    started = time.perf_counter()
    radiomic_prob = out_of_fold(make_pipeline("logistic"), radiomic_x, labels, folds)
    radiomic_patients = per_patient(table.index, table["patient_id"], labels, radiomic_prob)
    print(f"radiomic logistic ({len(radiomic_columns)} columns): patient-level AUC "
          f"{patient_auc(radiomic_patients):.3f} ({time.perf_counter() - started:.1f} s)", flush=True)

    rows = []
    for margin in arguments.margins:
        started = time.perf_counter()
        embeddings = compute_embeddings(table.reset_index(drop=True), arguments.backbone, "imagenet",
                                        store_dir=arguments.store, batch_size=arguments.batch_size,
                                        margin=margin)
        embed_seconds = time.perf_counter() - started
        failures = embeddings.attrs["failures"]
        embeddings = embeddings.set_index("roi_id", drop=False)
        keep = table.index.isin(embeddings.index)  # ROIs that could be embedded at this margin
        deep_x = embeddings.loc[table.index[keep]].filter(like="deep_").to_numpy()
        deep_model = sk_make_pipeline(StandardScaler(), LogisticRegression(C=arguments.C, max_iter=2000))
        deep_prob = out_of_fold(deep_model, deep_x, labels[keep], folds[keep])
        deep_patients = per_patient(table.index[keep], table["patient_id"][keep], labels[keep], deep_prob)
        image_auc = roc_auc_score(labels[keep], deep_prob)
        fused = deep_patients.join(radiomic_patients["prob"].rename("radiomic_prob"), how="inner")
        fused["prob"] = (fused["prob"] + fused["radiomic_prob"]) / 2
        row = {"margin": margin, "rois": int(keep.sum()), "failed": len(failures),
               "deep_image_auc": image_auc, "deep_patient_auc": patient_auc(deep_patients),
               "radiomic_patient_auc": patient_auc(radiomic_patients.loc[fused.index]),
               "fusion_patient_auc": patient_auc(fused), "embed_s": embed_seconds,
               "total_s": time.perf_counter() - started}
        rows.append(row)
        print(f"margin {margin}: {row['rois']} ROIs ({row['failed']} failed), embeddings in {embed_seconds:.1f} s; "
              f"patient-level AUC deep {row['deep_patient_auc']:.3f} (image-level {image_auc:.3f}), "
              f"radiomic {row['radiomic_patient_auc']:.3f}, late fusion {row['fusion_patient_auc']:.3f}",
              flush=True)

    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)


if __name__ == "__main__":
    main()

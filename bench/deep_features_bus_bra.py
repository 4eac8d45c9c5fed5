"""Do ImageNet features help on BUS-BRA? EfficientNet-Lite0 embeddings vs the same network untrained.

All 1,875 BUS-BRA ROIs are embedded once per weight setting (cached in the feature store, so a
rerun computes nothing) and a logistic regression is evaluated on them in the publishers'
patient-level 5-fold CV (``5-fold-cv.csv``, column ``kFold``). Scaling and the regression are fitted
inside the training folds only. AUCs are patient-level: the mean probability of a patient's images.

Run (from the repository root; nice, it takes minutes on a CPU)::

    nice .venv/bin/python bench/deep_features_bus_bra.py --data ../shared/data/bus-bra \
        --store scratch/bus-bra-store > scratch/deep_features_bus_bra.log 2>&1

Measured (CPU, shared 2-core machine; logistic regression C=0.01 on standardised embeddings):
ImageNet weights: image-level AUC 0.854, patient-level AUC 0.875; random weights (seed 0): 0.850 and
0.869. The second run reads all 3,750 embeddings from the store in 8 s and computes nothing.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import PredefinedSplit, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.cohort import Cohort
from dlradiomics.cohort.loaders import bus_bra_manifest
from dlradiomics.features.deep import compute_embeddings


def bus_bra_table(root: Path) -> pd.DataFrame:
    """The validated BUS-BRA cohort table, with the publishers' 5-fold column ``fold5``."""
    cohort = Cohort.from_table(bus_bra_manifest(root), root, source=str(root))
    cohort.raise_for_problems()
    return cohort.table


def patient_level_auc(embeddings: pd.DataFrame, folds: pd.Series) -> tuple[float, float]:
    """Out-of-fold logistic regression on the deep columns; (image-level AUC, patient-level AUC)."""
    features = embeddings.filter(like="deep_").to_numpy()
    labels = embeddings["label"].to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    probabilities = cross_val_predict(model, features, labels, cv=PredefinedSplit(folds.to_numpy() - 1),
                                      method="predict_proba")[:, 1]
    per_patient = pd.DataFrame({"patient_id": embeddings["patient_id"], "label": labels, "prob": probabilities})
    per_patient = per_patient.groupby("patient_id").agg(label=("label", "max"), prob=("prob", "mean"))
    return roc_auc_score(labels, probabilities), roc_auc_score(per_patient["label"], per_patient["prob"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bus-bra"))
    parser.add_argument("--store", type=Path, default=Path("scratch/bus-bra-store"))
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads; on a shared, busy machine one thread is far faster")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    table = bus_bra_table(arguments.data)
    print(f"BUS-BRA: {len(table)} images, {table['patient_id'].nunique()} patients")
    for weights in ("imagenet", None):
        started = time.perf_counter()
        embeddings = compute_embeddings(table, arguments.backbone, weights, store_dir=arguments.store,
                                        batch_size=arguments.batch_size)
        seconds = time.perf_counter() - started
        folds = table.set_index("roi_id").loc[embeddings["roi_id"], "fold5"]
        image_auc, patient_auc = patient_level_auc(embeddings, folds)
        failures = embeddings.attrs["failures"]  # records of the ROIs that could not be embedded
        print(f"{arguments.backbone} weights={weights}: {len(embeddings)} ROIs embedded "
              f"({len(failures)} failed) in {seconds:.1f} s; logistic regression, publishers' 5 folds: "
              f"image-level AUC {image_auc:.3f}, patient-level AUC {patient_auc:.3f}", flush=True)


if __name__ == "__main__":
    main()

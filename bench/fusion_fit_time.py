"""Fit time of the late fusions on real BUS-BRA features (radiomic + EfficientNet-Lite0), one outer fold.

Trains on the images of ``fold5 != 1`` and predicts ``fold5 == 1``; prints the fit time of each
model and a checksum of its held-out predict_proba, so that a speed change can be checked to leave
results untouched (``--save`` / ``--compare`` write and check the probabilities to 1e-12).
Run: ``nice .venv/bin/python bench/fusion_fit_time.py [--save before.npz | --compare before.npz]``
(``--only NAME ...`` fits only the named models).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dlradiomics.cohort import Cohort
from dlradiomics.features.deep import compute_embeddings
from dlradiomics.models import DLRFusion, StackingFusion, WeightedEnsembleFusion, build_model_table, make_pipeline

ROOT = Path(__file__).resolve().parents[1]


def load() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    manifest = pd.read_csv(ROOT / "scratch" / "bus-bra-manifest.csv")
    data = ROOT.parent / "shared" / "data" / "bus-bra"
    cohort = Cohort.from_table(manifest, data, source=str(data))
    table = cohort.table
    radiomic = pd.read_parquet(ROOT / "scratch" / "bus-bra-radiomics" / "radiomic_features.parquet")
    deep = compute_embeddings(table, "efficientnet_lite0", "imagenet", store_dir=ROOT / "scratch" / "bus-bra-store", margin=0.1)
    X, y, _ = build_model_table({"radiomic": radiomic, "deep": deep}, ["US"], ["radiomic", "deep"], "image")
    fold_of_patient = table.groupby("patient_id")["fold5"].first()
    test = (fold_of_patient.loc[X.index].to_numpy() == 1)
    return X, np.asarray(y), test


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--save", type=Path)
    parser.add_argument("--compare", type=Path)
    parser.add_argument("--only", nargs="*")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    X, y, test = load()
    X_train, y_train, X_test = X.loc[~test], y[~test], X.loc[test]
    print(f"table {X.shape}, train {len(X_train)} rows, test {len(X_test)} rows")
    models = {
        "pipeline_radiomic_logistic": (make_pipeline("logistic"), [c for c in X.columns if c.startswith("US.radiomic__")]),
        "WeightedEnsembleFusion_logistic": (WeightedEnsembleFusion(classifier="logistic"), None),
        "StackingFusion_logistic": (StackingFusion(classifier="logistic"), None),
        # the names without a suffix keep the composition they had before the paper's was added
        "DLRFusion_stacking_logistic": (DLRFusion(strategy="stacking", classifier="logistic", composition="whole_table"), None),
        "DLRFusion_ensemble_logistic": (DLRFusion(strategy="ensemble", classifier="logistic", composition="whole_table"), None),
        "DLRFusion_stacking_logistic_paper": (DLRFusion(strategy="stacking", classifier="logistic"), None),
        "DLRFusion_ensemble_logistic_paper": (DLRFusion(strategy="ensemble", classifier="logistic"), None),
    }
    results = {}
    total = 0.0
    for name, (model, columns) in models.items():
        if arguments.only and name not in arguments.only:
            continue
        train = X_train if columns is None else X_train[columns]
        held_out = X_test if columns is None else X_test[columns]
        start = time.perf_counter()
        model.fit(train, y_train)
        seconds = time.perf_counter() - start
        total += seconds
        proba = model.predict_proba(held_out)
        results[name] = proba
        print(f"{name:<34} fit {seconds:7.2f} s   checksum {np.nansum(proba[:, 1]):.15f}", flush=True)
    print(f"{'total':<34} fit {total:7.2f} s")
    if arguments.save:
        np.savez(arguments.save, **results)
    if arguments.compare:
        reference = np.load(arguments.compare)
        for name, proba in results.items():
            if name not in reference:
                print(f"{name:<34} not in {arguments.compare}")
                continue
            diff = np.nanmax(np.abs(proba - reference[name]))
            same_nan = np.array_equal(np.isnan(proba), np.isnan(reference[name]))
            print(f"{name:<34} max |diff| {diff:.3e}  nan pattern equal {same_nan}  {'OK' if diff <= 1e-12 and same_nan else 'DIFFERENT'}")


if __name__ == "__main__":
    main()

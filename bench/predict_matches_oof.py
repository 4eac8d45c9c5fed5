"""Check on BUS-BRA: a bundle fitted like one outer fold predicts that fold's patients exactly as the grid did.

Reads the cached feature store and the study run of `bench/study_bus_bra_full.yaml` (run it first).
For the chosen configuration and one published fold, fits the same estimator on that fold's training
patients, saves it as a bundle, runs `predict_manifest(bundle, manifest)` on a few of the fold's test patients
(features recomputed through the store, as for any new patient) and compares with the run's
out-of-fold predictions of that configuration.

Usage: nice .venv/bin/python bench/predict_matches_oof.py [--fold 1] [--patients 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import yaml

from dlradiomics.bundle import load_bundle, save_bundle
from dlradiomics.study.prediction import predict_manifest
from dlradiomics.cohort import read_manifest
from dlradiomics.models import ModelConfiguration, build_estimator
from dlradiomics.study.features import compute_feature_tables, model_table_for
from dlradiomics.study.stages import dlr_for, selections_for
from dlradiomics.study.settings import StudySettings

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Fit, bundle, predict and compare; print the largest difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--patients", type=int, default=10)
    args = parser.parse_args()

    settings = StudySettings.from_yaml(REPO / "bench" / "study_bus_bra_full.yaml")
    run = sorted((settings.output / "runs").glob("*/oof_predictions.csv"))[-1].parent
    results = pd.read_csv(run / "tables" / "results_long.csv")
    best = results[results["status"] == "ok"].sort_values("inner_auc", ascending=False).iloc[0]
    configuration = ModelConfiguration(best["source"], tuple(best["modalities"].split("+")), best["fusion"],
                                       best["classifier"])
    oof = pd.read_csv(run / "oof_predictions.csv", dtype={"patient_id": str})
    for column, value in configuration.key().items():
        oof = oof[oof[column] == value]
    folds = pd.read_csv(run / "folds.csv", dtype={"patient_id": str})
    test_patients = folds.loc[folds["fold"] == args.fold, "patient_id"]
    manifest = pd.read_csv(settings.cohort.manifest, dtype={"patient_id": str})
    kinds = list(configuration.kinds)
    cohort = read_manifest(settings.cohort.manifest)
    features = compute_feature_tables(cohort.table[cohort.table["modality"] == "US"], kinds, store_dir=settings.store,
                                      radiomics_params=run / "radiomics_params.yaml", progress=False)
    X, y, _ = model_table_for(features.tables, list(configuration.modalities), kinds)
    train = ~X.index.isin(test_patients)
    estimator = build_estimator(configuration, selections=selections_for(settings), dlr=dlr_for(settings),
                                inner_cv=settings.cv.inner_folds,
                                random_state=settings.cv.seed)
    model = estimator.fit(X[train], y[train])
    chosen = test_patients.head(args.patients)
    with tempfile.TemporaryDirectory() as scratch:
        bundle_dir = save_bundle(Path(scratch) / "bundle", model, training_table=X[train], threshold=0.5,
                                 modalities=list(configuration.modalities), feature_kinds=kinds, level="image",
                                 settings={"radiomics_params": yaml.safe_load((run / "radiomics_params.yaml").read_text()),
                                           "backbone": settings.deep.backbone, "weights": settings.deep.weights})
        new = manifest[manifest["patient_id"].isin(chosen)].drop(columns=["label"])
        new.to_csv(Path(scratch) / "new.csv", index=False)
        predicted = predict_manifest(load_bundle(bundle_dir), Path(scratch) / "new.csv", store_dir=settings.store,
                                     gradcam=False)
    comparison = predicted.set_index("patient_id")[["probability", "warnings"]].join(
        oof.set_index("patient_id")["prob"].rename("grid_oof_probability"))
    comparison["difference"] = (comparison["probability"] - comparison["grid_oof_probability"]).abs()
    print(f"configuration: {configuration.label}; fold {args.fold}; run {run}")
    print(comparison.to_string())
    print(f"largest absolute difference: {np.nanmax(comparison['difference']):.2e}")


if __name__ == "__main__":
    main()

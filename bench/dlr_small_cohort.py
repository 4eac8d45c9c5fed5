"""DLR early fusion against radiomic alone on small BUS-BRA cohorts (issue 10: 69 patients, US, logistic, 3 folds).

For each of ``--draws`` seeded draws of ``--patients`` BUS-BRA patients (stratified by label, all
their images), the experiment grid cross-validates the radiomic model (Mann-Whitney ->
correlation -> LASSO -> logistic) and DLR early fusion in ``--folds`` patient-grouped folds, and
prints the patient-level AUC of each and the gap. The DLR rows are run for each composition in
``--compositions``; with a checkout from before ``DLRComposition`` existed the grid's own DLR is
run once, labelled ``as-built``.

Features come from the same store as ``bench/fusion_fit_time.py`` (radiomic parquet of
``dlradiomics extract`` and EfficientNet-Lite0 embeddings, margin 0.1).

Run (from the repository root)::

    nice .venv/bin/python bench/dlr_small_cohort.py [--draws 5] [--patients 69] [--one-image-per-patient]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dlradiomics.cohort import Cohort
from dlradiomics.evaluation.grid import run_grid
from dlradiomics.evaluation.splits import RepeatedPatientKFold
from dlradiomics.features.deep import compute_embeddings

try:
    from dlradiomics.models import DLRComposition
except ImportError:  # a checkout from before the paper's composition: its DLR runs as built
    DLRComposition = None

ROOT = Path(__file__).resolve().parents[1]


def feature_tables() -> dict[str, pd.DataFrame]:
    manifest = pd.read_csv(ROOT / "scratch" / "bus-bra-manifest.csv")
    data = ROOT.parent / "shared" / "data" / "bus-bra"
    table = Cohort.from_table(manifest, data, source=str(data)).table
    radiomic = pd.read_parquet(ROOT / "scratch" / "bus-bra-radiomics" / "radiomic_features.parquet")
    deep = compute_embeddings(table, "efficientnet_lite0", "imagenet", store_dir=ROOT / "scratch" / "bus-bra-store", margin=0.1)
    return {"radiomic": radiomic, "deep": deep}


def draw_patients(tables: dict[str, pd.DataFrame], n_patients: int, seed: int, one_image: bool = False) -> dict[str, pd.DataFrame]:
    """A label-stratified random subset of patients, with all their images (or the first by roi_id), in every table."""
    labels = tables["radiomic"].groupby("patient_id")["label"].first()
    rng = np.random.default_rng(seed)
    malignant = labels.index[labels == 1].to_numpy()
    benign = labels.index[labels == 0].to_numpy()
    n_malignant = int(round(n_patients * len(malignant) / len(labels)))
    chosen = set(rng.choice(malignant, n_malignant, replace=False)) | set(
        rng.choice(benign, n_patients - n_malignant, replace=False)
    )
    subset = {kind: frame[frame["patient_id"].isin(chosen)] for kind, frame in tables.items()}
    if one_image:
        first = set(subset["radiomic"].sort_values("roi_id").groupby("patient_id")["roi_id"].first())
        subset = {kind: frame[frame["roi_id"].isin(first)] for kind, frame in subset.items()}
    return {kind: frame.reset_index(drop=True) for kind, frame in subset.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=69)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--classifier", default="logistic")
    parser.add_argument("--compositions", nargs="+", default=["paper", "whole_table"])
    parser.add_argument("--one-image-per-patient", action="store_true",
                        help="keep each patient's first image only (issue 10's cohort had 69 patients, 70 images)")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    tables = feature_tables()
    dlr_runs = [DLRComposition(composition=c) for c in arguments.compositions] if DLRComposition else [None]
    rows = []
    for draw in range(arguments.draws):
        subset = draw_patients(tables, arguments.patients, seed=draw, one_image=arguments.one_image_per_patient)
        common = dict(modality_sets=[("US",)], fusions=("early",), classifiers=(arguments.classifier,),
                      outer=RepeatedPatientKFold(n_splits=arguments.folds, seed=draw), n_boot=200, seed=draw)
        started = time.perf_counter()
        radiomic = run_grid(subset, sources=("radiomic",), **common).completed.iloc[0]
        row = {"draw": draw, "patients": subset["radiomic"]["patient_id"].nunique(),
               "images": len(subset["radiomic"]), "radiomic": radiomic["auc"]}
        for dlr in dlr_runs:
            extra = {"dlr": dlr} if dlr is not None else {}
            result = run_grid(subset, sources=("dlr",), **common, **extra).results.iloc[0]
            name = f"dlr_{dlr.composition}" if dlr is not None else "dlr_as-built"
            row[name] = result["auc"] if result["status"] == "ok" else np.nan
            row[f"gap_{name[4:]}"] = row["radiomic"] - row[name]
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        print(", ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}" for key, value in row.items()),
              flush=True)
    frame = pd.DataFrame(rows)
    print()
    print(frame.to_string(index=False, float_format=lambda value: f"{value:.3f}"))
    print("\nmean:", ", ".join(f"{column} {frame[column].mean():.3f}" for column in frame.columns if column not in ("draw",)))


if __name__ == "__main__":
    main()

"""Fine-tuned versus frozen deep features, and the CNN baseline, on BUS-BRA in the publishers' folds.

For each outer fold of ``5-fold-cv.csv`` (optionally a stratified subset of patients, or some folds):

- ``frozen``: EfficientNet-Lite0 ImageNet embeddings (cached), standardised, logistic regression
  (C=0.01): the "~0.87" figure of issue 11;
- ``tuned``: :class:`FineTunedEmbeddings` (the last blocks fine-tuned on the outer-training patients
  only, early stopping on a patient-grouped fifth of them) then the same scaler and regression;
- ``cnn``: :class:`CnnClassifier`, the same fine-tuning, predicting with the network's own head
  (the CNN baseline of the paper's comparison table).

Every model is fitted by ``dlradiomics.evaluation.crossval.predict_outer_fold`` on the training
rows of the fold and scores its test patients (mean probability of a patient's images), the same
prediction rows the study's grid produces. AUCs are patient-level, pooled over the folds run.
Timings print per fold and stage; the first fold also pays for the crops and the frozen front's
activations (cached in ``--store`` for every later fold and run).

Run (from the repository root; nice: minutes to an hour on a CPU)::

    nice -n 10 .venv/bin/python bench/cnn_bus_bra.py --data ../shared/data/bus-bra \
        --store scratch/bus-bra-store --threads 2 > scratch/cnn_bus_bra.log 2>&1

Options: ``--patients N`` (stratified subset), ``--folds 1,2`` (some of the publishers' folds),
``--image-size``, ``--n-last-blocks``, ``--trainable``, ``--epochs``, ``--models frozen,tuned,cnn``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.cohort import Cohort
from dlradiomics.cohort.loaders import bus_bra_manifest
from dlradiomics.evaluation.crossval import predict_outer_fold
from dlradiomics.evaluation.splits import fold_table_from_column, iter_outer_folds
from dlradiomics.evaluation.stats import delong_auc_ci, delong_test
from dlradiomics.features.deep import compute_embeddings
from dlradiomics.features.deep.cnn import CnnClassifier, FineTunedEmbeddings


def bus_bra_table(root: Path, n_patients: int | None, seed: int) -> pd.DataFrame:
    """BUS-BRA rows (all, or a label-stratified random subset of ``n_patients`` patients)."""
    cohort = Cohort.from_table(bus_bra_manifest(root), root, source=str(root))
    cohort.raise_for_problems()
    table = cohort.table
    if n_patients is not None:
        labels = table.groupby("patient_id")["label"].max()
        share = n_patients / len(labels)
        chosen = (labels.groupby(labels).sample(frac=share, random_state=seed).index)
        table = table[table["patient_id"].isin(chosen)]
    return table.reset_index(drop=True)


def frozen_features(table: pd.DataFrame, store: Path) -> pd.DataFrame:
    """The ROI table with the frozen ImageNet EfficientNet-Lite0 embedding columns joined on."""
    embeddings = compute_embeddings(table, "efficientnet_lite0", "imagenet", store_dir=store)
    deep = embeddings.filter(like="deep_")
    deep.index = embeddings["roi_id"]
    return deep.loc[table["roi_id"]].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bus-bra"))
    parser.add_argument("--store", type=Path, default=Path("scratch/bus-bra-store"))
    parser.add_argument("--patients", type=int, default=None, help="stratified subset of this many patients")
    parser.add_argument("--folds", default=None, help="comma-separated publishers' folds to run (default: all)")
    parser.add_argument("--models", default="frozen,tuned,cnn")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--trainable", default="last_blocks")
    parser.add_argument("--n-last-blocks", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the prediction rows of every model (CSV)")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    table = bus_bra_table(arguments.data, arguments.patients, arguments.seed)
    print(f"BUS-BRA: {len(table)} images, {table['patient_id'].nunique()} patients "
          f"({'all' if arguments.patients is None else 'stratified subset, seed %d' % arguments.seed})", flush=True)
    groups = table["patient_id"].astype(str).to_numpy()
    labels = table["label"].to_numpy()
    fold_table = fold_table_from_column(table, "fold5")
    wanted = None if arguments.folds is None else {int(fold) for fold in arguments.folds.split(",")}
    models = arguments.models.split(",")

    network = {"image_size": arguments.image_size, "trainable": arguments.trainable,
               "n_last_blocks": arguments.n_last_blocks, "epochs": arguments.epochs, "patience": arguments.patience,
               "learning_rate": arguments.learning_rate, "store_dir": str(arguments.store), "seed": arguments.seed}
    estimators = {
        "tuned": make_pipeline(FineTunedEmbeddings(**network), StandardScaler(), LogisticRegression(C=0.01, max_iter=2000)),
        "cnn": CnnClassifier(**network),
    }
    print(f"network settings: {network}", flush=True)
    inputs = {"tuned": table.set_index("patient_id"), "cnn": table.set_index("patient_id")}
    if "frozen" in models:
        started = time.perf_counter()
        inputs["frozen"] = frozen_features(table, arguments.store).set_axis(pd.Index(groups, name="patient_id"))
        estimators["frozen"] = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
        print(f"frozen embeddings ready in {time.perf_counter() - started:.1f} s", flush=True)

    predictions: dict[str, list[pd.DataFrame]] = {model: [] for model in models}
    for fold in iter_outer_folds(fold_table, groups):
        if wanted is not None and fold.fold not in wanted:
            continue
        for model in models:
            started = time.perf_counter()
            rows = predict_outer_fold(estimators[model], inputs[model], labels, groups, fold,
                                      threshold_source="train", seed=arguments.seed)
            seconds = time.perf_counter() - started
            predictions[model].append(rows)
            auc = roc_auc_score(rows["y_true"], rows["prob"])
            print(f"fold {fold.fold}: {model:<6} patient-level AUC {auc:.3f} ({len(rows)} test patients, "
                  f"{len(np.unique(groups[fold.train_index]))} training patients) in {seconds:.1f} s", flush=True)

    print("\npooled over the folds run (patient level; DeLong 95% CI; DeLong test against the first model):")
    pooled = {model: pd.concat(predictions[model], ignore_index=True).set_index("patient_id") for model in models}
    reference = models[0]
    for model in models:
        rows = pooled[model].loc[pooled[reference].index]
        auc, low, high = delong_auc_ci(rows["y_true"].to_numpy(), rows["prob"].to_numpy())
        line = f"  {model:<6} AUC {auc:.3f} ({low:.3f}-{high:.3f}) on {len(rows)} patients"
        if model != reference:
            test = delong_test(rows["y_true"].to_numpy(), rows["prob"].to_numpy(),
                               pooled[reference].loc[rows.index, "prob"].to_numpy())
            line += (f"; minus {reference}: {test.difference:+.3f} ({test.ci_low:+.3f} to {test.ci_high:+.3f}), "
                     f"p = {test.p_value:.3f}")
        print(line)
    if arguments.out is not None:
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        pd.concat([frame.reset_index().assign(model=model) for model, frame in pooled.items()]).to_csv(
            arguments.out, index=False)
        print(f"prediction rows: {arguments.out}")


if __name__ == "__main__":
    main()

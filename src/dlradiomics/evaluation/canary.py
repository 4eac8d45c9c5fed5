"""The leakage canary: with labels permuted between patients, an honest pipeline scores AUC ~0.5.

Any step that sees test patients' labels (selection on all data, a threshold or ensemble weights
fitted on test predictions, images of one patient on both sides of a split) lets a model "learn"
permuted labels, and the canary's AUC rises above chance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score

from dlradiomics.evaluation.crossval import FoldScheme, cross_validate_patients
from dlradiomics.evaluation.grid import run_grid
from dlradiomics.evaluation.grid_result import GridResult
from dlradiomics.evaluation.splits import RepeatedPatientKFold

EstimatorOrBuilder = BaseEstimator | Callable[[pd.DataFrame, np.ndarray], BaseEstimator]


@dataclass(frozen=True)
class CanaryResult:
    """Outcome of a canary run.

    Args:
        aucs: One row per permutation (and configuration, for a grid) with its out-of-fold AUC.
        mean_auc: Mean of those AUCs.
        tolerance: Allowed distance of ``mean_auc`` from 0.5.
        passed: ``abs(mean_auc - 0.5) <= tolerance``.
    """

    aucs: pd.DataFrame
    mean_auc: float
    tolerance: float
    passed: bool


def permute_patient_labels(y: np.ndarray, groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """Shuffle labels between patients, keeping every image of a patient on that patient's new label.

    Args:
        y: Row labels.
        groups: Patient id of each row.
        seed: Seed of the permutation.

    Returns:
        Permuted row labels (same class counts over patients).
    """
    groups = np.asarray(groups)
    patient_labels = pd.Series(np.asarray(y)).groupby(groups).first()
    shuffled = np.random.default_rng(seed).permutation(patient_labels.to_numpy())
    new_label = pd.Series(shuffled, index=patient_labels.index)
    return new_label.reindex(groups).to_numpy()


def permute_table_labels(feature_tables: Mapping[str, pd.DataFrame], seed: int = 0) -> dict[str, pd.DataFrame]:
    """Feature tables whose labels are permuted between patients, the same way in every table.

    Args:
        feature_tables: Image-level feature tables by kind (``patient_id`` and ``label`` columns).
        seed: Seed of the permutation.

    Returns:
        The tables with permuted ``label`` columns (every image of a patient keeps one label).
    """
    patients = pd.concat([table[["patient_id", "label"]] for table in feature_tables.values()])
    patients = patients.assign(patient_id=patients["patient_id"].astype(str)).drop_duplicates("patient_id")
    new_labels = pd.Series(
        permute_patient_labels(patients["label"].to_numpy(), patients["patient_id"].to_numpy(), seed),
        index=patients["patient_id"].to_numpy(),
    )
    return {
        kind: table.assign(label=new_labels.reindex(table["patient_id"].astype(str)).to_numpy())
        for kind, table in feature_tables.items()
    }


def run_canary(
    estimator: EstimatorOrBuilder,
    X: pd.DataFrame,
    y: np.ndarray | pd.Series,
    groups: np.ndarray | None = None,
    *,
    outer: pd.DataFrame | FoldScheme | None = None,
    n_permutations: int = 3,
    tolerance: float = 0.07,
    seed: int = 0,
    n_jobs: int = 1,
) -> CanaryResult:
    """Cross-validate an estimator on patient-permuted labels and check the AUC stays near 0.5.

    Args:
        estimator: Unfitted classifier, or a function ``build(X, y_permuted) -> classifier`` for
            procedures that touch the whole data set before cross-validation (which is what the
            canary exists to catch).
        X: Modelling table (index: patient id).
        y: Row labels.
        groups: Patient id of each row; default ``X.index``.
        outer: Fold table or scheme; default stratified grouped 5-fold.
        n_permutations: Number of independent permutations.
        tolerance: Allowed distance of the mean AUC from 0.5.
        seed: Seed of permutation ``i`` is ``seed + i``.
        n_jobs: Outer folds in parallel.

    Returns:
        The `CanaryResult`.
    """
    groups = np.asarray(X.index if groups is None else groups).astype(str)
    rows = []
    for permutation in range(n_permutations):
        permuted = permute_patient_labels(np.asarray(y), groups, seed=seed + permutation)
        model = estimator if isinstance(estimator, BaseEstimator) else estimator(X, permuted)
        oof = cross_validate_patients(
            model,
            X,
            permuted,
            groups,
            outer=RepeatedPatientKFold(seed=seed + permutation) if outer is None else outer,
            seed=seed,
            n_jobs=n_jobs,
        )
        rows.append({"permutation": permutation, "auc": roc_auc_score(oof["y_true"], oof["prob"])})
    return _verdict(pd.DataFrame(rows), tolerance)


def run_grid_canary(
    feature_tables: Mapping[str, pd.DataFrame],
    *,
    n_permutations: int = 1,
    tolerance: float = 0.07,
    seed: int = 0,
    **grid_options,
) -> tuple[CanaryResult, list[GridResult]]:
    """Run the experiment grid (or a subset, via ``grid_options``) on patient-permuted labels.

    Args:
        feature_tables: Image-level feature tables by kind, as for `run_grid`.
        n_permutations: Number of permutations.
        tolerance: Allowed distance of the mean AUC over all configurations from 0.5.
        seed: Seed of the permutations.
        **grid_options: Passed to `run_grid` (sources, modality_sets, classifiers, ...).

    Returns:
        ``(canary, grid_results)``; the canary's table has one row per permutation and
        configuration.
    """
    rows, grids = [], []
    for permutation in range(n_permutations):
        permuted_tables = permute_table_labels(feature_tables, seed=seed + permutation)
        grid = run_grid(permuted_tables, seed=seed + permutation, **grid_options)
        grids.append(grid)
        completed = grid.completed[["source", "modalities", "fusion", "classifier", "auc", "auc_ci_low", "auc_ci_high"]]
        rows.append(completed.assign(permutation=permutation))
    return _verdict(pd.concat(rows, ignore_index=True), tolerance), grids


def _verdict(aucs: pd.DataFrame, tolerance: float) -> CanaryResult:
    mean_auc = float(aucs["auc"].mean())
    return CanaryResult(aucs=aucs, mean_auc=mean_auc, tolerance=tolerance, passed=abs(mean_auc - 0.5) <= tolerance)

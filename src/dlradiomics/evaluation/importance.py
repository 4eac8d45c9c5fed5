"""Permutation importance of a configuration's features, measured on held-out outer folds.

For each outer fold the estimator is fitted on the fold's training rows (as in the grid: same
estimator, same rows, same seed, so the same model), then scikit-learn's `permutation_importance`
shuffles each feature the classifier reads among the fold's test rows and records the drop in
ROC AUC. Measured on patients the model never saw, it does not reward features a flexible model
merely memorised (unlike the impurity importances of tree ensembles).

Each pipeline of the model is measured at its classifier's input: selection only picks columns and
imputation and scaling act on each column alone, so shuffling a selected column there equals
shuffling the raw feature, and features the selection dropped have no effect at all. For late
fusion, each block's model is measured on its own (the drop in that block model's AUC).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.inspection import permutation_importance

from dlradiomics.evaluation.splits import iter_outer_folds
from dlradiomics.models.blocks import BLOCK_SEPARATOR
from dlradiomics.models.terms import block_pipelines
from dlradiomics.progress import Progress

IMPORTANCE_COLUMNS = ["block", "feature", "column", "repeat", "fold", "importance", "importance_sd"]


def held_out_permutation_importance(estimator: BaseEstimator, X: pd.DataFrame, y: pd.Series | np.ndarray,
                                    groups: pd.Series | np.ndarray, fold_table: pd.DataFrame, *,
                                    n_repeats: int = 5, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Permutation importance (drop in AUC) of every selected feature, on each held-out outer fold.

    Args:
        estimator: the unfitted configuration (cloned per fold).
        X: its modelling table.
        y: row labels 0/1.
        groups: patient id of each row.
        fold_table: the outer folds (only the first repeat is measured).
        n_repeats: shuffles per feature and fold.
        seed: seed of the shuffles.
        progress: show the count of folds done and the time left.

    Returns:
        One row per selected feature and fold (`IMPORTANCE_COLUMNS`); empty when the model reads
        only derived columns (PCA components).
    """
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups).astype(str)
    X = X.set_axis(pd.Index(groups, name="patient_id"))
    folds = [fold for fold in iter_outer_folds(fold_table, groups)
             if fold.repeat == int(fold_table["repeat"].min())]
    records = []
    with Progress(len(folds), "permutation importance", unit="fold", enabled=progress) as bar:
        for fold in folds:
            model = clone(estimator).fit(X.iloc[fold.train_index], y[fold.train_index])
            X_test, y_test = X.iloc[fold.test_index], y[fold.test_index]
            for block, pipeline in block_pipelines(model).items():
                records.extend(_pipeline_importance(pipeline, block, X_test, y_test, fold, n_repeats, seed))
            bar.update()
    return pd.DataFrame(records, columns=IMPORTANCE_COLUMNS)


def _pipeline_importance(pipeline, block: str, X_test: pd.DataFrame, y_test: np.ndarray, fold, n_repeats: int,
                         seed: int) -> list[dict]:
    inputs = [str(column) for column in pipeline.feature_names_in_]
    table = X_test[inputs]
    rows = table.notna().any(axis=1).to_numpy()  # a late-fusion block model scores rows having its block
    if len(np.unique(y_test[rows])) < 2:
        return []
    transformed = pipeline[:-1].transform(table[rows])
    columns = [str(column) for column in transformed.columns]
    if not set(columns) <= set(inputs):
        return []  # PCA components: no feature to name
    result = permutation_importance(pipeline[-1], transformed, y_test[rows], scoring="roc_auc", n_repeats=n_repeats,
                                    random_state=seed)
    records = []
    for position, column in enumerate(columns):
        own_block, _, feature = column.rpartition(BLOCK_SEPARATOR)
        records.append({"block": own_block or block, "feature": feature or column, "column": column,
                        "repeat": fold.repeat, "fold": fold.fold,
                        "importance": float(result.importances_mean[position]),
                        "importance_sd": float(result.importances_std[position])})
    return records

"""The leakage canary passes an honest pipeline and fails a deliberately leaky one."""

from __future__ import annotations

import numpy as np
import pandas as pd
from evaluation_data import make_feature_tables, make_image_table
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.evaluation.canary import permute_patient_labels, run_canary, run_grid_canary


def test_permutation_moves_labels_between_patients_not_images():
    X, y = make_image_table(n_patients=50, seed=0)
    groups = X.index.to_numpy()
    permuted = permute_patient_labels(y.to_numpy(), groups, seed=1)
    per_patient = pd.Series(permuted).groupby(groups).nunique()
    assert (per_patient == 1).all()
    original = y.groupby(level=0).first()
    shuffled = pd.Series(permuted, index=groups).groupby(level=0).first()
    assert shuffled.sum() == original.sum()
    assert (shuffled != original).any()


def test_honest_pipeline_passes_even_with_selection_on_many_noise_features():
    X, y = make_image_table(n_patients=80, n_features=300, signal=0.0, max_images=1, seed=3)
    honest = make_pipeline(SelectKBest(f_classif, k=10), StandardScaler(), LogisticRegression(C=0.1))
    canary = run_canary(honest, X, y, n_permutations=3, seed=0)
    assert canary.passed, canary.aucs
    assert abs(canary.mean_auc - 0.5) <= 0.07


def select_on_all_patients_then_classify(X: pd.DataFrame, y: np.ndarray):
    """The classic leak: feature selection on every patient (test folds included) before CV."""
    chosen = SelectKBest(f_classif, k=10).fit(X, y).get_support(indices=True)
    keep = ColumnTransformer([("chosen", "passthrough", list(X.columns[chosen]))])
    return make_pipeline(keep, StandardScaler(), LogisticRegression(C=0.1))


def test_selection_before_cv_fails_the_canary():
    X, y = make_image_table(n_patients=80, n_features=300, signal=0.0, max_images=1, seed=3)
    canary = run_canary(select_on_all_patients_then_classify, X, y, n_permutations=3, seed=0)
    assert not canary.passed
    assert canary.mean_auc > 0.7


def test_grid_canary_on_permuted_labels_is_near_chance():
    tables = make_feature_tables(n_patients=80, modalities=("US",), signal=2.0, seed=6)
    canary, grids = run_grid_canary(
        tables,
        n_permutations=2,
        sources=("radiomic", "deep"),
        classifiers=("logistic", "knn"),
        selections={"radiomic": None, "deep": None},
        inner_splits=2,
        n_boot=50,
    )
    assert len(canary.aucs) == 2 * 4
    assert canary.passed, canary.aucs
    # With the true labels the same features separate the classes well, so chance level on
    # permuted labels is the canary working, not a model unable to learn.
    radiomic = tables["radiomic"]
    assert roc_auc_score(radiomic["label"], radiomic["original_firstorder_f0000"]) > 0.8
    assert len(grids) == 2

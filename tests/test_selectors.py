"""Selectors on generated data whose informative, redundant and constant columns are known."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline

from dlradiomics.models import BoundedPCA, CorrelationFilter, LassoSelector, MannWhitneySelector, SelectionFallbackWarning

INFORMATIVE = [0, 1, 2]
REDUNDANT_COPY_OF_0 = 3
CONSTANT = 4


def known_table(n_patients: int = 100, n_noise: int = 25, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two images per patient; columns 0-2 informative, 3 a noisier copy of 0, 4 constant, rest noise."""
    rng = np.random.default_rng(seed)
    patient_label = rng.integers(0, 2, n_patients)
    labels = np.repeat(patient_label, 2)
    n_rows = len(labels)
    columns = {}
    for index in INFORMATIVE:
        columns[f"f{index}"] = rng.normal(size=n_rows) + 1.5 * labels
    columns[f"f{REDUNDANT_COPY_OF_0}"] = columns["f0"] + 0.05 * rng.normal(size=n_rows)
    columns[f"f{CONSTANT}"] = np.full(n_rows, 7.0)
    for index in range(5, 5 + n_noise):
        columns[f"f{index}"] = rng.normal(size=n_rows)
    patients = pd.Index(np.repeat([f"P{i:03d}" for i in range(n_patients)], 2), name="patient_id")
    return pd.DataFrame(columns, index=patients), labels


def test_mann_whitney_keeps_informative_and_reports_auc_like_sklearn():
    X, y = known_table()
    selector = MannWhitneySelector(p_threshold=0.001, min_features=1).fit(X, y)
    kept = set(selector.get_feature_names_out())
    assert {"f0", "f1", "f2"} <= kept
    assert "f4" not in kept
    assert len(kept) <= 5
    expected_auc = [roc_auc_score(y, X[column]) for column in X.columns if column != "f4"]
    observed_auc = np.delete(selector.auc_, CONSTANT)
    np.testing.assert_allclose(observed_auc, expected_auc, atol=1e-12)
    assert selector.p_values_[CONSTANT] == 1.0
    assert not selector.fallback_used_


def test_mann_whitney_ignores_nan_values():
    X, y = known_table()
    X.iloc[::5, 0] = np.nan
    selector = MannWhitneySelector(p_threshold=0.001, min_features=1).fit(X, y)
    assert selector.get_support()[0]
    assert selector.transform(X).shape[0] == len(X)


def test_mann_whitney_falls_back_to_best_k_and_says_so_when_nothing_passes():
    X, y = known_table()
    noise_only = X.drop(columns=["f0", "f1", "f2", "f3"])
    with pytest.warns(SelectionFallbackWarning, match="no feature passed"):
        selector = MannWhitneySelector(p_threshold=1e-12, min_features=3).fit(noise_only, y)
    assert selector.fallback_used_
    assert selector.get_support().sum() == 3
    smallest_p = np.argsort(selector.p_values_)[:3]
    assert set(np.flatnonzero(selector.get_support())) == set(smallest_p)


def _more_related_of(X: pd.DataFrame, y: np.ndarray, first: str, second: str) -> tuple[str, str]:
    """(more, less) related to the label of two columns, by |AUC - 0.5| from scikit-learn."""
    relevance = {column: abs(roc_auc_score(y, X[column]) - 0.5) for column in (first, second)}
    more = max(relevance, key=relevance.get)
    return more, second if more == first else first


def test_correlation_filter_drops_the_copy_less_related_to_the_label():
    X, y = known_table()
    selector = CorrelationFilter(threshold=0.9).fit(X, y)
    kept = set(selector.get_feature_names_out())
    more_related, less_related = _more_related_of(X, y, "f0", "f3")
    assert more_related in kept and less_related not in kept
    assert {"f1", "f2"} <= kept
    assert "f4" not in kept
    assert len(kept) == X.shape[1] - 2


def test_correlation_filter_handles_two_columns():
    X, y = known_table()
    selector = CorrelationFilter(threshold=0.9).fit(X[["f0", "f3"]], y)
    assert list(selector.get_feature_names_out()) == [_more_related_of(X, y, "f0", "f3")[0]]


def test_correlation_filter_keeps_uncorrelated_columns_at_threshold_one():
    X, y = known_table()
    selector = CorrelationFilter(threshold=1.0).fit(X, y)
    assert selector.get_support().sum() == X.shape[1] - 1


def test_lasso_keeps_informative_columns_and_drops_most_noise():
    X, y = known_table(n_patients=150)
    selector = LassoSelector(random_state=0).fit(X.drop(columns=["f3"]), y)
    kept = set(selector.get_feature_names_out())
    assert {"f0", "f1", "f2"} <= kept
    assert len(kept) < 12
    assert selector.C_ > 0


def test_lasso_falls_back_when_every_coefficient_is_zero():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(60, 6)), columns=[f"n{i}" for i in range(6)])
    y = np.tile([0, 1], 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionFallbackWarning)
        selector = LassoSelector(n_penalties=3, min_features=2).fit(X, y)
    assert selector.get_support().sum() >= 2
    if np.all(selector.coef_ == 0):
        assert selector.fallback_used_


def test_selectors_reject_a_single_class():
    X, y = known_table()
    with pytest.raises(ValueError, match="one class"):
        MannWhitneySelector().fit(X, np.zeros(len(X), dtype=int))


@pytest.mark.parametrize(
    "selector",
    [MannWhitneySelector(p_threshold=0.01), CorrelationFilter(threshold=0.8), LassoSelector(n_penalties=4), BoundedPCA(4)],
    ids=["mannwhitney", "correlation", "lasso", "pca"],
)
def test_selectors_clone_and_cross_validate_in_a_pipeline(selector):
    X, y = known_table()
    X = X.drop(columns=["f4"])
    pipeline = Pipeline([("select", clone(selector)), ("classify", LogisticRegression(max_iter=1000))])
    scores = cross_val_score(pipeline, X, y, groups=X.index, cv=GroupKFold(4), scoring="roc_auc")
    assert scores.mean() > 0.8


def test_lasso_one_standard_error_rule_is_at_least_as_sparse_as_the_best_penalty():
    X, y = known_table(n_patients=150)
    X = X.drop(columns=["f3", "f4"])
    sparse = LassoSelector(penalty_rule="one_standard_error").fit(X, y)
    best = LassoSelector(penalty_rule="best").fit(X, y)
    assert sparse.C_ <= best.C_
    assert sparse.get_support().sum() <= best.get_support().sum()
    assert 1e-3 <= sparse.C_ <= 3.0
    with pytest.raises(ValueError, match="penalty_rule"):
        LassoSelector(penalty_rule="aic").fit(X, y)


def test_lasso_scores_its_penalty_path_by_the_roc_auc_of_each_inner_fold():
    from sklearn.metrics import get_scorer

    from dlradiomics.models.selectors import _inner_fold_auc

    rng = np.random.default_rng(4)
    for _ in range(20):
        X = rng.normal(size=(40, 5)).round(1)  # rounded: tied scores
        y = rng.integers(0, 2, 40)
        model = LogisticRegression().fit(rng.normal(size=(30, 5)), rng.integers(0, 2, 30))
        model.coef_[0, 3] = 0.0
        assert _inner_fold_auc(model, X, y) == pytest.approx(get_scorer("roc_auc")(model, X, y), abs=1e-12)
    model.coef_[:] = 0.0  # every coefficient zeroed by the penalty: all scores tied
    assert _inner_fold_auc(model, X, y) == 0.5

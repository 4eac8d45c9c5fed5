"""Fusion estimators on generated multimodal tables with known informative and missing blocks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn.base import clone
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from dlradiomics.models import (
    DLRFusion,
    EarlyFusion,
    MissingBlockWarning,
    StackingFusion,
    WeightedEnsembleFusion,
    make_pipeline,
)

LIGHT = dict(classifier="logistic", selection=None)


def multimodal_table(
    signal: dict[str, float], n_patients: int = 90, n_features: int = 6, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Patient-level table; each block's first two columns shift by ``signal[block]`` for malignant patients."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n_patients) % 2)
    columns = {}
    for block, strength in signal.items():
        for index in range(n_features):
            columns[f"{block}__f{index}"] = rng.normal(size=n_patients) + (strength * labels if index < 2 else 0.0)
    index = pd.Index([f"P{i:03d}" for i in range(n_patients)], name="patient_id")
    return pd.DataFrame(columns, index=index), labels


def blank_block(X: pd.DataFrame, block: str, rows: slice) -> pd.DataFrame:
    blanked = X.copy()
    blanked.loc[blanked.index[rows], [column for column in X if column.startswith(f"{block}__")]] = np.nan
    return blanked


def test_ensemble_weights_are_softmax_of_inner_cv_accuracies():
    X, y = multimodal_table({"US.radiomic": 1.5, "MG.radiomic": 0.6, "MR.radiomic": 0.0})
    fusion = WeightedEnsembleFusion(inner_cv=4, random_state=0, **LIGHT).fit(X, y)

    accuracies = []
    splitter = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=0)
    for block in ["US.radiomic", "MG.radiomic", "MR.radiomic"]:
        block_table = X[[column for column in X if column.startswith(block)]]
        predictions = np.empty(len(y))
        for train, test in splitter.split(block_table, y, groups=X.index):
            model = make_pipeline("logistic", None).fit(block_table.iloc[train], y[train])
            predictions[test] = model.predict_proba(block_table.iloc[test])[:, 1]
        accuracies.append(accuracy_score(y, predictions >= 0.5))
    expected = np.exp(accuracies) / np.exp(accuracies).sum()

    np.testing.assert_allclose(list(fusion.block_scores_.values()), accuracies)
    np.testing.assert_allclose(list(fusion.weights_.values()), expected)
    assert fusion.weights_["US.radiomic"] > fusion.weights_["MR.radiomic"]


def test_ensemble_auc_weighting_uses_inner_cv_auc():
    X, y = multimodal_table({"US.radiomic": 1.5, "US.deep": 0.0})
    fusion = WeightedEnsembleFusion(weighting="auc", inner_cv=3, **LIGHT).fit(X, y)
    scores = np.array(list(fusion.block_scores_.values()))
    np.testing.assert_allclose(list(fusion.weights_.values()), softmax(scores))
    assert scores[0] > 0.8 > scores[1]


def test_ensemble_uses_the_blocks_a_patient_has_with_renormalised_weights():
    X, y = multimodal_table({"US.radiomic": 1.5, "MG.radiomic": 1.0})
    X = blank_block(X, "MG.radiomic", slice(0, 15))
    fusion = WeightedEnsembleFusion(inner_cv=3, **LIGHT).fit(X, y)
    proba = fusion.predict_proba(X)[:, 1]
    assert not np.isnan(proba).any()
    blocks = fusion.block_probabilities(X)
    np.testing.assert_allclose(proba[:15], blocks["US.radiomic"].to_numpy()[:15])
    weights = np.array([fusion.weights_["US.radiomic"], fusion.weights_["MG.radiomic"]])
    expected_complete = blocks.iloc[15:].to_numpy() @ weights / weights.sum()
    np.testing.assert_allclose(proba[15:], expected_complete)


def test_stacking_meta_learner_does_not_trust_a_memorising_noise_block():
    X, y = multimodal_table({"US.radiomic": 2.0, "US.deep": 0.0}, n_patients=120)
    one_nearest_neighbour = KNeighborsClassifier(n_neighbors=1)
    fusion = StackingFusion(classifier=one_nearest_neighbour, selection=None, inner_cv=5).fit(X, y)

    in_sample = fusion.block_probabilities(X)
    assert roc_auc_score(y, in_sample["US.deep"]) == 1.0  # the noise block memorises its training rows
    # a meta-learner fed in-sample probabilities cannot tell the noise block from the informative one
    leaky_meta = make_pipeline("logistic", None).fit(in_sample, y)[-1].coef_.ravel()
    assert leaky_meta[1] == pytest.approx(leaky_meta[0])

    coefficients = dict(zip(fusion.meta_feature_names_, fusion.meta_model_[-1].coef_.ravel()))
    assert coefficients["US.radiomic__proba"] > 0.5
    assert abs(coefficients["US.deep__proba"]) < 0.25 * coefficients["US.radiomic__proba"]


def test_stacking_predicts_patients_missing_a_block():
    X, y = multimodal_table({"US.radiomic": 1.5, "MG.radiomic": 1.0})
    X = blank_block(X, "MG.radiomic", slice(0, 20))
    fusion = StackingFusion(inner_cv=3, **LIGHT).fit(X, y)
    assert "MG.radiomic__missing" in fusion.meta_feature_names_
    assert fusion.block_prevalence_["MG.radiomic"] == pytest.approx(y[20:].mean())
    proba = fusion.predict_proba(X)[:, 1]
    assert not np.isnan(proba).any()
    assert roc_auc_score(y[:20], proba[:20]) > 0.7


def test_late_fusion_gives_nan_for_a_patient_with_no_block():
    X, y = multimodal_table({"US.radiomic": 1.5, "MG.radiomic": 1.0})
    fusion = WeightedEnsembleFusion(inner_cv=3, **LIGHT).fit(X, y)
    empty = X.iloc[:2].copy()
    empty.iloc[0] = np.nan
    with pytest.warns(MissingBlockWarning, match="patient P000 lacks US.radiomic, MG.radiomic"):
        proba = fusion.predict_proba(empty)
    assert np.isnan(proba[0]).all() and not np.isnan(proba[1]).any()
    with pytest.warns(MissingBlockWarning):
        assert fusion.predict(empty)[0] == -1


def test_early_fusion_reports_dropped_patients_and_gives_nan_with_the_reason():
    X, y = multimodal_table({"US.radiomic": 1.5, "MG.radiomic": 1.0})
    X = blank_block(X, "MG.radiomic", slice(0, 3))
    with pytest.warns(MissingBlockWarning, match="dropped 3 training row"):
        fusion = EarlyFusion(**LIGHT).fit(X, y)
    assert fusion.dropped_patients_ == ["P000", "P001", "P002"]
    with pytest.warns(MissingBlockWarning, match="patient P000 lacks MG.radiomic"):
        proba = fusion.predict_proba(X)
    assert np.isnan(proba[:3]).all()
    assert not np.isnan(proba[3:]).any()
    assert fusion.missing_blocks(X).iloc[0] == ["MG.radiomic"]


def test_early_fusion_equals_one_pipeline_on_the_concatenated_blocks():
    X, y = multimodal_table({"US.radiomic": 1.5, "US.deep": 1.0})
    fused = EarlyFusion(**LIGHT).fit(X, y).predict_proba(X)
    direct = make_pipeline("logistic", None).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(fused, direct)


def test_dlr_fusion_caps_pca_at_the_training_rows_and_builds_modality_blocks():
    X, y = multimodal_table({"US.radiomic": 1.5, "US.deep": 1.0, "MG.radiomic": 0.5, "MG.deep": 0.5}, n_patients=40, n_features=20)
    early = DLRFusion("early", n_components=108, **LIGHT).fit(X, y)
    (_, _, reducer), = early.reducers_.values()
    assert reducer[-1].n_components_ == 40  # 40 training rows < 80 columns < 108
    stacking = DLRFusion("stacking", n_components=5, inner_cv=3, **LIGHT).fit(X, y)
    assert list(stacking.reducers_) == ["US.dlr", "MG.dlr"]
    assert list(stacking.block_probabilities(X).columns) == ["US.dlr", "MG.dlr"]


def test_dlr_pca_is_fitted_on_training_rows_only():
    X, y = multimodal_table({"US.radiomic": 1.5, "US.deep": 1.0}, n_patients=60)
    train, test = X.iloc[:40], X.iloc[40:]
    fitted_on_train = DLRFusion("early", n_components=4, **LIGHT).fit(train, y[:40])
    reducer = fitted_on_train.reducers_["DLR.pca"][2]
    components_before = reducer[-1].pca_.components_.copy()
    fitted_on_train.predict_proba(test)
    np.testing.assert_array_equal(reducer[-1].pca_.components_, components_before)
    refit_on_all = DLRFusion("early", n_components=4, **LIGHT).fit(X, y)
    assert not np.allclose(np.abs(refit_on_all.reducers_["DLR.pca"][2][-1].pca_.components_), np.abs(components_before))


ESTIMATORS = [
    EarlyFusion(**LIGHT),
    WeightedEnsembleFusion(inner_cv=3, **LIGHT),
    StackingFusion(inner_cv=3, meta="lightgbm", **LIGHT),
    DLRFusion("early", n_components=4, **LIGHT),
    DLRFusion("ensemble", n_components=4, inner_cv=3, **LIGHT),
    DLRFusion("stacking", n_components=4, inner_cv=3, **LIGHT),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: f"{type(e).__name__}-{getattr(e, 'strategy', '')}")
def test_fusion_survives_clone_and_grouped_cross_val_predict(estimator):
    X, y = multimodal_table({"US.radiomic": 1.5, "MG.radiomic": 1.0, "MG.deep": 0.3})
    X = blank_block(X, "MG.deep", slice(0, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingBlockWarning)
        proba = cross_val_predict(clone(estimator), X, y, cv=GroupKFold(4), groups=X.index, method="predict_proba")[:, 1]
    predicted = ~np.isnan(proba)
    assert predicted[6:].all()
    assert roc_auc_score(y[predicted], proba[predicted]) > 0.75
    assert clone(estimator).get_params() == estimator.get_params()


def test_fusion_needs_a_modelling_table():
    X, y = multimodal_table({"US.radiomic": 1.0})
    with pytest.raises(TypeError, match="DataFrame"):
        EarlyFusion().fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="not named"):
        EarlyFusion().fit(X.rename(columns=lambda column: column.replace("__", "_")), y)
    broken = X.copy()
    broken.iloc[4, 2] = np.inf
    with pytest.raises(ValueError, match="patient P004 has an infinite value in 'US.radiomic__f2'"):
        WeightedEnsembleFusion().fit(broken, y)


def test_fitted_fusion_round_trips_through_skops():
    import skops.io

    X, y = multimodal_table({"US.radiomic": 1.5, "MG.radiomic": 1.0})
    X = blank_block(X, "MG.radiomic", slice(0, 5))
    fitted = DLRFusion("stacking", n_components=3, inner_cv=3, **LIGHT).fit(X, y)
    payload = skops.io.dumps(fitted)
    loaded = skops.io.loads(payload, trusted=skops.io.get_untrusted_types(data=payload))
    np.testing.assert_allclose(loaded.predict_proba(X), fitted.predict_proba(X))
    assert loaded.block_probabilities(X).columns.tolist() == ["US.dlr", "MG.dlr"]

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
    make_preprocessing,
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
        predicted = fusion.predict(empty)
    assert np.isnan(predicted[0]) and predicted[1] in (0, 1)


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


def test_whole_table_dlr_caps_pca_at_the_training_rank_and_builds_modality_blocks():
    X, y = multimodal_table({"US.radiomic": 1.5, "US.deep": 1.0, "MG.radiomic": 0.5, "MG.deep": 0.5}, n_patients=40, n_features=20)
    early = DLRFusion("early", n_components=108, composition="whole_table", **LIGHT).fit(X, y)
    (_, _, reducer), = early.reducers_.values()
    assert reducer[-1].n_components_ == 39  # 40 centred training rows have rank 39 < 80 columns < 108
    stacking = DLRFusion("stacking", n_components=5, inner_cv=3, composition="whole_table", **LIGHT).fit(X, y)
    assert list(stacking.reducers_) == ["US.dlr", "MG.dlr"]
    assert list(stacking.block_probabilities(X).columns) == ["US.dlr", "MG.dlr"]


def test_paper_dlr_reduces_each_modality_deep_block_then_the_deep_and_radiomic_parts():
    X, y = multimodal_table({"US.radiomic": 1.5, "US.deep": 1.0, "MG.radiomic": 0.5, "MG.deep": 0.5}, n_patients=120, n_features=40)
    fusion = DLRFusion("early", **LIGHT).fit(X, y)
    assert list(fusion.reducers_) == ["DLR.radiomic", "DLR.deep"]
    radiomic_sources, _, radiomic_reducer = fusion.reducers_["DLR.radiomic"]
    deep_sources, _, deep_reducer = fusion.reducers_["DLR.deep"]
    assert radiomic_sources == ["US.radiomic", "MG.radiomic"] and deep_sources == ["US.deep", "MG.deep"]
    # 32 components of each modality's deep block, joined (64) and reduced to the paper's 51
    assert [fusion.block_reducers_[block][-1].n_components_ for block in deep_sources] == [32, 32]
    assert deep_reducer[-1].n_components_ == 51
    assert radiomic_reducer[-1].n_components_ == 57  # 80 radiomic columns -> 57
    reduced = fusion.transform_blocks(X)
    assert reduced.shape[1] == 108
    assert reduced.columns[0] == "DLR.radiomic__pca0" and reduced.columns[-1] == "DLR.deep__pca50"

    # each modality's deep block is reduced on its own: the US components do not depend on MG's values
    shuffled_mg = X.copy()
    mg_deep = [column for column in X if column.startswith("MG.deep__")]
    shuffled_mg[mg_deep] = X[mg_deep].to_numpy()[np.random.default_rng(0).permutation(len(X))]
    refitted = DLRFusion("early", **LIGHT).fit(shuffled_mg, y)
    np.testing.assert_allclose(
        refitted.block_reducers_["US.deep"][-1].pca_.components_, fusion.block_reducers_["US.deep"][-1].pca_.components_
    )

    # the paper's late strategies fit one model per part of each modality, sharing the paper's counts
    ensemble = DLRFusion("ensemble", inner_cv=3, **LIGHT).fit(X, y)
    assert list(ensemble.weights_) == ["US.dlr_radiomic", "US.dlr_deep", "MG.dlr_radiomic", "MG.dlr_deep"]
    assert ensemble.part_components_ == {"US.dlr_radiomic": 29, "US.dlr_deep": 26, "MG.dlr_radiomic": 29,
                                         "MG.dlr_deep": 26}  # ceil(57 / 2), ceil(51 / 2)
    assert [reducer[-1].n_components_ for _, _, reducer in ensemble.reducers_.values()] == [29, 26, 29, 26]
    us_sources, _, _ = ensemble.reducers_["US.dlr_deep"]
    assert us_sources == ["US.deep"]


def test_paper_dlr_caps_every_pca_at_a_small_training_fold():
    X, y = multimodal_table({"US.radiomic": 1.5, "US.deep": 1.0}, n_patients=30, n_features=50)
    early = DLRFusion("early", **LIGHT).fit(X, y)
    deep_reducer = early.reducers_["DLR.deep"][2]
    assert early.block_reducers_["US.deep"][-1].n_components_ == 29
    # early fusion: 51 + 57 components exceed the 29 that 30 rows hold; they share them 51:57
    assert early.part_components_ == {"DLR.deep": 14, "DLR.radiomic": 15}
    assert deep_reducer[-1].n_components_ == 14
    assert early.reducers_["DLR.radiomic"][2][-1].n_components_ == 15
    assert early.transform_blocks(X).shape[1] == 29
    # a late strategy classifies each part on its own: each is capped by its own rank only
    stacking = DLRFusion("stacking", inner_cv=3, **LIGHT).fit(X, y)
    assert stacking.part_components_ == {"US.dlr_radiomic": 57, "US.dlr_deep": 51}
    assert [reducer[-1].n_components_ for _, _, reducer in stacking.reducers_.values()] == [29, 29]


def test_paper_late_dlr_on_one_modality_models_the_papers_two_parts():
    # With one modality the late strategies' parts are the paper's two parts, as early fusion builds
    # them when its joint cap does not bind (200 rows hold 51 + 57 components; the deep part keeps
    # the 32 columns of the modality's reduced deep block).
    X, y = multimodal_table({"US.radiomic": 1.5, "US.deep": 1.0}, n_patients=200, n_features=70)
    early = DLRFusion("early", **LIGHT).fit(X, y)
    stacking = DLRFusion("stacking", inner_cv=3, **LIGHT).fit(X, y)
    assert early.part_components_ == {"DLR.deep": 51, "DLR.radiomic": 57}
    late_parts = stacking.transform_blocks(X)
    early_parts = early.transform_blocks(X)
    assert late_parts.shape == early_parts.shape == (200, 57 + 32)
    np.testing.assert_allclose(late_parts.to_numpy(), early_parts.to_numpy(), rtol=0, atol=1e-10)
    assert late_parts.columns[0] == "US.dlr_radiomic__pca0" and late_parts.columns[-1] == "US.dlr_deep__pca31"


@pytest.mark.parametrize("strategy", ["ensemble", "stacking"])
def test_paper_late_dlr_scores_every_patient_with_any_modality(strategy):
    # 120 patients: 30 lack US (both kinds), 30 others lack MG, 6 of the rest lack only MG's deep
    # block (its extraction failed), 4 have nothing. US carries the signal in its radiomic block,
    # MG in its deep block, so each patient's probability comes from what that patient has.
    X, y = multimodal_table({"US.radiomic": 3.0, "US.deep": 0.0, "MG.radiomic": 0.0, "MG.deep": 3.0},
                            n_patients=120, n_features=20, seed=1)
    for block in ("US.radiomic", "US.deep"):
        X = blank_block(X, block, slice(0, 30))
    for block in ("MG.radiomic", "MG.deep"):
        X = blank_block(X, block, slice(30, 60))
    X = blank_block(X, "MG.deep", slice(60, 66))
    X.iloc[116:] = np.nan
    model = DLRFusion(strategy, inner_cv=3, **LIGHT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingBlockWarning)
        proba = cross_val_predict(model, X, y, cv=GroupKFold(4), groups=X.index, method="predict_proba")[:, 1]
        early = cross_val_predict(DLRFusion("early", **LIGHT), X, y, cv=GroupKFold(4), groups=X.index,
                                  method="predict_proba")[:, 1]
    has_any = X.notna().any(axis=1).to_numpy()
    assert np.isfinite(proba[has_any]).all() and np.isnan(proba[~has_any]).all()
    only_mg, only_us = slice(0, 30), slice(30, 60)
    assert roc_auc_score(y[only_mg], proba[only_mg]) > 0.8  # scored from MG's deep part
    assert roc_auc_score(y[only_us], proba[only_us]) > 0.8  # scored from US's radiomic part
    # early fusion needs every block of every modality: only the 50 complete patients are scored
    assert np.isfinite(early).sum() == 50 and np.isfinite(early[66:116]).all()


def test_dlr_pca_is_fitted_on_training_rows_only():
    X, y = multimodal_table({"US.radiomic": 1.5, "US.deep": 1.0}, n_patients=60)
    train, test = X.iloc[:40], X.iloc[40:]
    fitted_on_train = DLRFusion("early", radiomic_components=4, deep_components=4, **LIGHT).fit(train, y[:40])
    reducer = fitted_on_train.reducers_["DLR.radiomic"][2]
    components_before = reducer[-1].pca_.components_.copy()
    fitted_on_train.predict_proba(test)
    np.testing.assert_array_equal(reducer[-1].pca_.components_, components_before)
    refit_on_all = DLRFusion("early", radiomic_components=4, deep_components=4, **LIGHT).fit(X, y)
    assert not np.allclose(np.abs(refit_on_all.reducers_["DLR.radiomic"][2][-1].pca_.components_), np.abs(components_before))


def test_early_fusion_reduces_each_block_on_its_own_with_block_selection():
    X, y = multimodal_table({"US.deep": 1.0, "MG.deep": 0.8}, n_patients=80, n_features=40)
    per_block = EarlyFusion(selection=None, block_selection=("pca:8",)).fit(X, y)
    reduced_columns = per_block.transform_blocks(X).columns.tolist()
    assert len(reduced_columns) == 16
    assert reduced_columns[0] == "US.deep__pca0" and reduced_columns[8] == "MG.deep__pca0"
    # the US part equals a PCA fitted on the US block alone
    us_alone = make_preprocessing(("pca:8",)).fit(X[[c for c in X if c.startswith("US.deep")]])
    np.testing.assert_allclose(
        per_block.block_reducers_["US.deep"][-1].pca_.components_,
        us_alone[-1].pca_.components_,
    )
    concatenated = EarlyFusion(selection=("pca:8",)).fit(X, y)
    assert concatenated.pipeline_[:-1].transform(X).shape[1] == 8


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


def test_fusion_input_errors_name_the_problem():
    X, y = multimodal_table({"US.radiomic": 1.0})
    with pytest.raises(ValueError, match="not named"):
        EarlyFusion().fit(X.rename(columns={"US.radiomic__f0": "f0"}), y)
    broken = X.copy()
    broken.iloc[4, 2] = np.inf
    with pytest.raises(ValueError, match="patient P004 has an infinite value in 'US.radiomic__f2'"):
        WeightedEnsembleFusion().fit(broken, y)
    with pytest.raises(ValueError, match="not a column of X"):
        EarlyFusion(blocks={"a": ["US.radiomic__f0", "nope"]}).fit(X, y)
    with pytest.raises(ValueError, match="in blocks 'a' and 'b'"):
        EarlyFusion(blocks={"a": [0, 1], "b": [1, 2, 3, 4, 5]}).fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="2 column\\(s\\) belong to no block"):
        EarlyFusion(blocks={"a": [0, 1, 2, 3]}).fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="X has no column names"):
        EarlyFusion(blocks={"a": ["f0"]}).fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="Only binary classification"):
        EarlyFusion().fit(X, np.arange(len(X)) % 3)


def test_fitted_fusion_round_trips_through_skops():
    import skops.io

    X, y = multimodal_table({"US.radiomic": 1.5, "MG.radiomic": 1.0, "US.deep": 0.5})
    X = blank_block(X, "MG.radiomic", slice(0, 5))
    for fitted, parts in [
        (DLRFusion("stacking", n_components=3, inner_cv=3, composition="whole_table", **LIGHT).fit(X, y), ["US.dlr", "MG.dlr"]),
        (DLRFusion("stacking", inner_cv=3, **LIGHT).fit(X, y), ["US.dlr_radiomic", "US.dlr_deep", "MG.dlr_radiomic"]),
    ]:
        payload = skops.io.dumps(fitted)
        loaded = skops.io.loads(payload, trusted=skops.io.get_untrusted_types(data=payload))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingBlockWarning)
            np.testing.assert_allclose(loaded.predict_proba(X), fitted.predict_proba(X))
            assert loaded.block_probabilities(X).columns.tolist() == parts

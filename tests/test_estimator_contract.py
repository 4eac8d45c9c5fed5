"""scikit-learn's estimator contract for every public estimator, and the fusion API that rests on it.

`parametrize_with_checks` runs scikit-learn's own checks (fit/predict on arrays, clone, pickling,
n_features_in_, feature names, NotFittedError, string labels, binary-only tags, ...). The
instances use light settings (logistic, no selection, two inner folds) so that the checks stay
fast; the same code paths run with the study's settings.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GroupKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from dlradiomics.features.deep.head import EmbeddingHeadClassifier
from dlradiomics.features.deep.reduction import RankCappedPCA
from dlradiomics.models import (
    BoundedPCA,
    ClinicalEncoder,
    CorrelationFilter,
    DLRFusion,
    EarlyFusion,
    LassoSelector,
    MannWhitneySelector,
    StackingFusion,
    WeightedEnsembleFusion,
)

LIGHT = dict(classifier="logistic", selection=None)

ESTIMATORS = [
    MannWhitneySelector(),
    CorrelationFilter(),
    LassoSelector(n_penalties=2, inner_cv=2),
    BoundedPCA(n_components=3),
    RankCappedPCA(n_components=3),
    ClinicalEncoder(categories=(("birads", ("2", "3", "4", "5")),)),
    EarlyFusion(block_selection=("pca:2",), **LIGHT),
    WeightedEnsembleFusion(inner_cv=2, **LIGHT),
    StackingFusion(inner_cv=2, **LIGHT),
    DLRFusion("stacking", inner_cv=2, **LIGHT),
    EmbeddingHeadClassifier(epochs=10, learning_rate=0.05),
]


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def patient_table(n_patients: int = 60, images_per_patient: int = 2, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two blocks, images repeated per patient with a little noise; US.radiomic informative, US.deep noise."""
    rng = np.random.default_rng(seed)
    patient_labels = rng.permutation(np.arange(n_patients) % 2)
    radiomic = rng.normal(size=(n_patients, 4)) + 1.5 * patient_labels[:, None]
    deep = rng.normal(size=(n_patients, 4))
    rows = np.repeat(np.arange(n_patients), images_per_patient)
    values = np.hstack([radiomic, deep])[rows] + 0.01 * rng.normal(size=(len(rows), 8))
    columns = [f"US.radiomic__r{i}" for i in range(4)] + [f"US.deep__d{i}" for i in range(4)]
    index = pd.Index([f"P{p:03d}" for p in rows], name="patient_id")
    return pd.DataFrame(values, index=index, columns=columns), patient_labels[rows]


BLOCKS_BY_POSITION = {"US.radiomic": [0, 1, 2, 3], "US.deep": [4, 5, 6, 7]}


@pytest.mark.parametrize(
    "estimator",
    [WeightedEnsembleFusion(inner_cv=3, **LIGHT), StackingFusion(inner_cv=3, **LIGHT), DLRFusion("early", **LIGHT)],
    ids=lambda estimator: type(estimator).__name__,
)
def test_an_array_with_a_block_map_and_groups_fits_like_the_modelling_table(estimator):
    X, y = patient_table()
    from_table = clone(estimator).fit(X, y)
    from_array = clone(estimator).set_params(blocks=BLOCKS_BY_POSITION).fit(X.to_numpy(), y, groups=X.index.to_numpy())
    np.testing.assert_array_equal(from_array.predict_proba(X.to_numpy()), from_table.predict_proba(X))
    assert from_array.blocks_ == from_table.blocks_ == ["US.radiomic", "US.deep"]
    by_name = clone(estimator).set_params(blocks={"rad": list(X.columns[:4]), "cnn": list(X.columns[4:])}).fit(X, y)
    assert by_name.blocks_ == ["rad", "cnn"]


def test_groups_reach_the_inner_folds_through_metadata_routing():
    # A 1-nearest-neighbour model on a pure-noise block memorises each patient's images: inner
    # folds that split a patient's images score it near 1, folds grouped by patient near 0.5.
    X, y = patient_table(n_patients=60, images_per_patient=3)
    noise_only = X[[column for column in X if column.startswith("US.deep")]].to_numpy()
    blocks = {"US.deep": [0, 1, 2, 3]}
    fusion = WeightedEnsembleFusion(classifier=KNeighborsClassifier(n_neighbors=1), selection=None, inner_cv=3, blocks=blocks)

    per_row = clone(fusion).fit(noise_only, y).block_scores_["US.deep"]
    assert per_row > 0.9  # no groups routed and no index: one group per row, images leak across inner folds

    with sklearn.config_context(enable_metadata_routing=True):
        routed = clone(fusion).set_fit_request(groups=True)
        outcome = cross_validate(
            routed, noise_only, y, cv=GroupKFold(3), params={"groups": X.index.to_numpy()}, return_estimator=True
        )
    for fitted in outcome["estimator"]:
        assert fitted.block_scores_["US.deep"] < 0.75


def test_any_two_labels_strings_included_come_back_from_predict():
    X, y = patient_table()
    names = np.where(y == 1, "malignant", "benign")
    for estimator in [EarlyFusion(**LIGHT), StackingFusion(inner_cv=3, classifier="xgboost", selection=None), DLRFusion("ensemble", inner_cv=3, **LIGHT)]:
        fitted = estimator.fit(X, names)
        assert fitted.classes_.tolist() == ["benign", "malignant"]
        predicted = fitted.predict(X)
        assert set(predicted) <= {"benign", "malignant"}
        numeric = clone(estimator).fit(X, y)
        # the second column is the probability of classes_[1] whatever the labels are called
        np.testing.assert_allclose(fitted.predict_proba(X), numeric.predict_proba(X))


def test_unscored_rows_predict_a_missing_value_of_the_label_type():
    X, y = patient_table()
    X.iloc[0, 4:] = np.nan  # the first image lacks its deep block
    names = np.where(y == 1, "malignant", "benign")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        as_numbers = EarlyFusion(**LIGHT).fit(X, y).predict(X)
        as_names = EarlyFusion(**LIGHT).fit(X, names).predict(X)
    assert np.isnan(as_numbers[0]) and set(as_numbers[1:]) <= {0.0, 1.0}
    assert as_names[0] is None and set(as_names[1:]) <= {"benign", "malignant"}


@pytest.mark.parametrize("method", ["predict", "predict_proba", "block_probabilities", "missing_blocks"])
@pytest.mark.parametrize(
    "estimator", [EarlyFusion(), WeightedEnsembleFusion(), StackingFusion(), DLRFusion()], ids=lambda e: type(e).__name__
)
def test_unfitted_fusion_raises_not_fitted(estimator, method):
    X, _ = patient_table(n_patients=4)
    with pytest.raises(NotFittedError):
        getattr(estimator, method)(X)


def test_predict_checks_the_number_of_features():
    X, y = patient_table()
    fitted = DLRFusion("early", **LIGHT, blocks=BLOCKS_BY_POSITION).fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="X has 7 features, but DLRFusion is expecting 8 features"):
        fitted.predict_proba(X.to_numpy()[:, :7])

"""Nested, patient-grouped CV: one prediction per patient, training-only thresholds, no test peeking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evaluation_data import make_image_table
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.evaluation.crossval import PREDICTION_COLUMNS, cross_validate_patients
from dlradiomics.evaluation.splits import PatientHoldout, RepeatedPatientKFold


@pytest.fixture(scope="module")
def data():
    return make_image_table(n_patients=120, signal=1.5, seed=1)


def logistic():
    return make_pipeline(StandardScaler(), LogisticRegression())


def test_every_patient_is_predicted_once_per_repeat(data):
    X, y = data
    oof = cross_validate_patients(logistic(), X, y, outer=RepeatedPatientKFold(n_splits=4, n_repeats=2))
    assert list(oof.columns) == list(PREDICTION_COLUMNS)
    assert len(oof) == 2 * X.index.nunique()
    assert oof.groupby("repeat")["patient_id"].apply(lambda ids: ids.is_unique and len(ids) == 120).all()
    patient_labels = y.groupby(level=0).first()
    assert (oof.set_index("patient_id")["y_true"] == patient_labels.reindex(oof["patient_id"])).all()
    assert roc_auc_score(oof["y_true"], oof["prob"]) > 0.8
    # One threshold and one inner AUC per fold, chosen before the test patients were scored.
    per_fold = oof.groupby(["repeat", "fold"])[["threshold", "inner_auc"]].nunique()
    assert (per_fold == 1).all().all()
    assert oof["inner_auc"].between(0.6, 1.0).all()


def test_patient_probability_is_the_mean_of_its_images(data):
    X, y = data
    holdout = PatientHoldout(test_size=0.25, seed=0)
    oof = cross_validate_patients(logistic(), X, y, outer=holdout)
    fold_table = holdout.fold_table(y.to_numpy(), X.index.to_numpy())
    train_patients = fold_table.loc[fold_table["fold"] == -1, "patient_id"]
    model = logistic().fit(X.loc[X.index.isin(train_patients)], y[X.index.isin(train_patients)])
    test_rows = X.loc[~X.index.isin(train_patients)]
    expected = pd.Series(model.predict_proba(test_rows)[:, 1], index=test_rows.index).groupby(level=0).mean()
    got = oof.set_index("patient_id")["prob"]
    np.testing.assert_allclose(got.loc[expected.index], expected)


def test_test_labels_never_reach_the_fit_or_the_threshold(data):
    X, y = data
    outer = RepeatedPatientKFold(n_splits=3, seed=2).fold_table(y.to_numpy(), X.index.to_numpy())
    reference = cross_validate_patients(logistic(), X, y, outer=outer)
    fold0_patients = outer.loc[outer["fold"] == 0, "patient_id"]
    flipped = y.copy()
    flipped[X.index.isin(fold0_patients)] = 1 - flipped[X.index.isin(fold0_patients)]
    rerun = cross_validate_patients(logistic(), X, flipped, outer=outer)
    fold0_before = reference[reference["fold"] == 0].set_index("patient_id")
    fold0_after = rerun[rerun["fold"] == 0].set_index("patient_id")
    np.testing.assert_allclose(fold0_after["prob"], fold0_before["prob"])
    np.testing.assert_allclose(fold0_after["threshold"], fold0_before["threshold"])
    assert (fold0_after["y_true"] != fold0_before["y_true"]).all()


def test_target_sensitivity_threshold_is_lower_than_youden_for_high_targets(data):
    X, y = data
    outer = RepeatedPatientKFold(n_splits=3, seed=0)
    youden = cross_validate_patients(logistic(), X, y, outer=outer)
    sensitive = cross_validate_patients(logistic(), X, y, outer=outer, threshold=0.99)
    assert (sensitive["threshold"].to_numpy() <= youden["threshold"].to_numpy()).all()
    called = sensitive["prob"] >= sensitive["threshold"]
    assert called[sensitive["y_true"] == 1].mean() > 0.9


def test_parallel_folds_give_the_same_predictions(data):
    X, y = data
    outer = RepeatedPatientKFold(n_splits=3, seed=0)
    serial = cross_validate_patients(logistic(), X, y, outer=outer)
    parallel = cross_validate_patients(logistic(), X, y, outer=outer, n_jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)


def test_misaligned_inputs_are_errors(data):
    X, y = data
    with pytest.raises(ValueError, match="must match"):
        cross_validate_patients(logistic(), X, y[:-1])
    with pytest.raises(ValueError, match="threshold_source"):
        cross_validate_patients(logistic(), X, y, threshold_source="test")


def test_explicit_groups_reach_the_estimators_inner_cv(data):
    # Estimators read the patient of each row from X.index for their own inner CV (LASSO
    # penalty, search, fusion weights); explicit groups must therefore become that index, or
    # images of one patient straddle the inner folds.
    from sklearn.base import BaseEstimator, ClassifierMixin

    class RecordingClassifier(ClassifierMixin, BaseEstimator):
        seen: list = []

        def fit(self, X, y):
            RecordingClassifier.seen.append(list(X.index))
            self.classes_ = np.unique(y)
            return self

        def predict_proba(self, X):
            value = np.asarray(X)[:, 0]
            positive = 1 / (1 + np.exp(-value))
            return np.column_stack([1 - positive, positive])

        def predict(self, X):
            return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    X, y = data
    patients = X.index.to_numpy()
    unlabelled = X.reset_index(drop=True)
    RecordingClassifier.seen = []
    cross_validate_patients(RecordingClassifier(), unlabelled, y.to_numpy(), patients, outer=PatientHoldout(seed=0))
    assert RecordingClassifier.seen
    for index in RecordingClassifier.seen:
        assert set(index) <= set(patients)

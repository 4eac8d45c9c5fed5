"""Nested, patient-grouped cross-validation with out-of-fold predictions per patient.

Each outer fold clones the estimator and fits it on the training rows only; every fitted choice
inside the estimator (selection, PCA, ensemble weights, meta-learner, hyper-parameters) is made
there by its own inner CV. The operating threshold is chosen on training patients only, from
inner out-of-fold predictions, and frozen before the test patients are scored; the inner AUC of
those predictions is kept, so model choice can rest on training data alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from dlradiomics.evaluation.splits import OuterFold, RepeatedPatientKFold, iter_outer_folds
from dlradiomics.evaluation.threshold import ThresholdRule, choose_threshold
from dlradiomics.models.blocks import aggregate_by_patient
from dlradiomics.models.inner_cv import PatientGroupKFold
from dlradiomics.models.terms import model_terms

PREDICTION_COLUMNS = ("patient_id", "repeat", "fold", "y_true", "prob", "threshold", "inner_auc",
                      "inner_sensitivity", "inner_specificity")
THRESHOLD_SOURCES = ("inner_oof", "train")
UNSCORED_POLICIES = ("raise", "drop")


class FoldScheme(Protocol):
    """Anything that assigns patients to outer folds (`RepeatedPatientKFold`, `PatientHoldout`)."""

    def fold_table(self, y: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
        """Return the fold table (``patient_id, repeat, fold``)."""


def resolve_fold_table(outer: pd.DataFrame | FoldScheme, y: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    """A fold table from either a fold table (used as is) or a fold scheme (applied to y, groups).

    Args:
        outer: Fold table or fold scheme.
        y: Row labels.
        groups: Patient id of each row.

    Returns:
        The fold table.
    """
    if isinstance(outer, pd.DataFrame):
        return outer
    return outer.fold_table(np.asarray(y), np.asarray(groups))


def cross_validate_patients(
    estimator: BaseEstimator,
    X: pd.DataFrame,
    y: np.ndarray | pd.Series,
    groups: np.ndarray | pd.Series | None = None,
    outer: pd.DataFrame | FoldScheme | None = None,
    *,
    threshold: ThresholdRule = "youden",
    threshold_source: str = "inner_oof",
    inner_splits: int = 3,
    aggregate: str = "mean",
    unscored: str = "raise",
    seed: int = 0,
    n_jobs: int = 1,
    return_terms: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-fold patient-level predictions of an estimator under nested, grouped CV.

    Args:
        estimator: Unfitted scikit-learn classifier (cloned per fold) taking ``X``.
        X: Modelling table; its index is the patient id (repeated for several images).
        y: Row labels 0/1.
        groups: Patient id of each row; default ``X.index``.
        outer: Fold table (e.g. published folds) or fold scheme; default stratified,
            patient-grouped 5-fold with one repeat.
        threshold: ``"youden"`` or a target sensitivity, applied to training predictions.
        threshold_source: ``"inner_oof"`` (inner out-of-fold predictions on the training
            patients: honest, costs ``inner_splits`` extra fits) or ``"train"`` (the fitted model's
            own training predictions: cheap but optimistic for flexible models).
        inner_splits: Inner folds for the threshold and the inner AUC.
        aggregate: How image probabilities become a patient probability (``"mean"``/``"max"``).
        unscored: What to do with a test patient the model gives no probability (early fusion
            cannot score a patient lacking a modality): ``"raise"`` or ``"drop"`` (the patient is
            left out of the returned table, so the number of patients shows it).
        seed: Seed of the inner folds.
        n_jobs: Outer folds fitted in parallel (joblib).
        return_terms: Also return what each outer fold's fitted model reads: its selected
            columns and their weights (`dlradiomics.models.model_terms`), with ``repeat, fold``.

    Returns:
        One row per test patient and repeat with columns ``PREDICTION_COLUMNS``; ``inner_auc``
        is the AUC of the inner out-of-fold predictions of that fold (NaN with
        ``threshold_source="train"``), ``inner_sensitivity`` and ``inner_specificity`` those
        predictions' sensitivity and specificity at the fold's threshold (with a target
        sensitivity as the rule, the specificity the training patients allow at it: what a
        choice for the clinical operating point compares). With ``return_terms``,
        ``(predictions, terms)``.

    Raises:
        ValueError: On misaligned inputs, an unknown threshold source, or a test patient left
            without a prediction.
    """
    if threshold_source not in THRESHOLD_SOURCES:
        raise ValueError(f"threshold_source must be one of {THRESHOLD_SOURCES}, got {threshold_source!r}")
    if unscored not in UNSCORED_POLICIES:
        raise ValueError(f"unscored must be one of {UNSCORED_POLICIES}, got {unscored!r}")
    y = np.asarray(y).astype(int)
    groups = np.asarray(X.index if groups is None else groups).astype(str)
    if not (len(X) == len(y) == len(groups)):
        raise ValueError(f"X has {len(X)} rows, y {len(y)} and groups {len(groups)}; they must match")
    fold_table = resolve_fold_table(RepeatedPatientKFold() if outer is None else outer, y, groups)
    folds = list(iter_outer_folds(fold_table, groups))
    outcomes = Parallel(n_jobs=n_jobs)(
        delayed(fit_outer_fold)(
            estimator,
            X,
            y,
            groups,
            fold,
            threshold=threshold,
            threshold_source=threshold_source,
            inner_splits=inner_splits,
            aggregate=aggregate,
            unscored=unscored,
            seed=seed,
        )
        for fold in folds
    )
    predictions = pd.concat([outcome.predictions for outcome in outcomes], ignore_index=True)
    if not return_terms:
        return predictions
    return predictions, pd.concat([outcome.terms for outcome in outcomes], ignore_index=True)


@dataclass(frozen=True)
class FoldOutcome:
    """One outer fold's test predictions and what its fitted model reads.

    Args:
        predictions: One row per test patient (``PREDICTION_COLUMNS``).
        terms: The fitted model's selected columns and weights (`dlradiomics.models.TERM_COLUMNS`)
            with ``repeat, fold``.
    """

    predictions: pd.DataFrame
    terms: pd.DataFrame


def predict_outer_fold(
    estimator: BaseEstimator,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    fold: OuterFold,
    **options,
) -> pd.DataFrame:
    """Fit on one outer fold's training rows and predict its test patients (arguments as for `fit_outer_fold`).

    Returns:
        One row per test patient (``PREDICTION_COLUMNS``).
    """
    return fit_outer_fold(estimator, X, y, groups, fold, **options).predictions


def fit_outer_fold(
    estimator: BaseEstimator,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    fold: OuterFold,
    *,
    threshold: ThresholdRule = "youden",
    threshold_source: str = "inner_oof",
    inner_splits: int = 3,
    aggregate: str = "mean",
    unscored: str = "raise",
    seed: int = 0,
) -> FoldOutcome:
    """Fit on one outer fold's training rows, predict its test patients, and record what the model reads.

    Args:
        estimator: Unfitted classifier (cloned here).
        X: Modelling table.
        y: Row labels.
        groups: Patient id of each row (strings).
        fold: The outer fold.
        threshold: Threshold rule.
        threshold_source: ``"inner_oof"`` or ``"train"``.
        inner_splits: Inner folds.
        aggregate: Image-to-patient aggregation.
        unscored: ``"raise"`` or ``"drop"`` for test patients without a probability.
        seed: Seed of the inner folds.

    Returns:
        The fold's predictions (one row per test patient, ``PREDICTION_COLUMNS``) and the fitted
        model's terms.
    """
    if not np.array_equal(X.index.astype(str), np.asarray(groups).astype(str)):
        # Estimators read each row's patient from X.index for their own inner CV (selection,
        # search, fusion weights); explicit groups become that index so no patient straddles it.
        X = X.set_axis(pd.Index(groups, name="patient_id"))
    X_train, y_train, groups_train = X.iloc[fold.train_index], y[fold.train_index], groups[fold.train_index]
    X_test, groups_test = X.iloc[fold.test_index], groups[fold.test_index]
    model = clone(estimator).fit(X_train, y_train)

    if threshold_source == "inner_oof":
        inner_prob = cross_val_predict(
            clone(estimator),
            X_train,
            y_train,
            groups=groups_train,
            cv=PatientGroupKFold(inner_splits, random_state=seed),
            method="predict_proba",
        )[:, 1]
    else:
        inner_prob = model.predict_proba(X_train)[:, 1]
    train_patients = _patient_predictions(inner_prob, y_train, groups_train, aggregate)
    train_patients = train_patients.dropna(subset=["prob"])
    fold_threshold = choose_threshold(train_patients["y_true"], train_patients["prob"], threshold)
    inner_auc = np.nan
    if threshold_source == "inner_oof":
        inner_auc = roc_auc_score(train_patients["y_true"], train_patients["prob"])
    called = train_patients["prob"].to_numpy() >= fold_threshold
    malignant = train_patients["y_true"].to_numpy() == 1
    inner_sensitivity = float(called[malignant].mean())
    inner_specificity = float((~called[~malignant]).mean())

    test_patients = _patient_predictions(model.predict_proba(X_test)[:, 1], y[fold.test_index], groups_test, aggregate)
    unscored_patients = test_patients.index[test_patients["prob"].isna()].tolist()
    if unscored_patients and unscored == "raise":
        raise ValueError(
            f"repeat {fold.repeat} fold {fold.fold}: "
            f"the model gave no probability for patients {unscored_patients[:10]}"
        )
    test_patients = test_patients.dropna(subset=["prob"])
    predictions = pd.DataFrame(
        {
            "patient_id": test_patients.index.to_numpy(),
            "repeat": fold.repeat,
            "fold": fold.fold,
            "y_true": test_patients["y_true"].to_numpy(),
            "prob": test_patients["prob"].to_numpy(),
            "threshold": fold_threshold,
            "inner_auc": inner_auc,
            "inner_sensitivity": inner_sensitivity,
            "inner_specificity": inner_specificity,
        }
    )
    return FoldOutcome(predictions, model_terms(model).assign(repeat=fold.repeat, fold=fold.fold))


def _patient_predictions(prob: np.ndarray, y: np.ndarray, groups: np.ndarray, aggregate: str) -> pd.DataFrame:
    patient_prob = aggregate_by_patient(prob, groups, method=aggregate)
    patient_label = pd.Series(y, index=pd.Index(groups, name="patient_id")).groupby(level=0, sort=False).max()
    return pd.DataFrame({"y_true": patient_label, "prob": patient_prob.reindex(patient_label.index)})

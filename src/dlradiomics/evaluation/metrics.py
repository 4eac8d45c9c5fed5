"""Patient-level classification metrics with stratified percentile bootstrap 95% CIs.

Point estimates come from scikit-learn. The bootstrap (``scipy.stats.bootstrap``) resamples
malignant and benign patients separately (as pROC does for AUC CIs), so every resample holds both
classes and the AUC is always defined; inside it the metrics are computed from confusion counts and
Mann-Whitney ranks, vectorised over resamples, because calling scikit-learn a thousand times per
configuration would dominate the run time of a grid. PPV (NPV) is undefined in a resample that calls
nobody positive (negative); its interval is the percentile interval of the resamples where it is defined.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import DegenerateDataWarning, bootstrap, rankdata
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

METRIC_NAMES = (
    "auc",
    "accuracy",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "ppv",
    "npv",
    "f1",
    "brier",
)


def classification_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float | np.ndarray) -> dict[str, float]:
    """AUC, accuracy, sensitivity, specificity, balanced accuracy, PPV, NPV, F1 and Brier score.

    Args:
        y_true: Patient labels 0/1.
        prob: Predicted probabilities of malignancy.
        threshold: Operating threshold, one for all or one per patient (each patient's fold
            threshold); a patient is positive when ``prob >= threshold``.

    Returns:
        Metric name to value (PPV/NPV are NaN when nobody is called positive/negative).
    """
    y_true, prob = _validated(y_true, prob)
    predicted = (prob >= np.asarray(threshold, dtype=float)).astype(int)
    return {
        "auc": roc_auc_score(y_true, prob),
        "accuracy": accuracy_score(y_true, predicted),
        "sensitivity": recall_score(y_true, predicted, pos_label=1),
        "specificity": recall_score(y_true, predicted, pos_label=0),
        "balanced_accuracy": balanced_accuracy_score(y_true, predicted),
        "ppv": precision_score(y_true, predicted, pos_label=1, zero_division=np.nan),
        "npv": precision_score(y_true, predicted, pos_label=0, zero_division=np.nan),
        "f1": f1_score(y_true, predicted, zero_division=np.nan),
        "brier": brier_score_loss(y_true, prob),
    }


def bootstrap_metrics(
    y_true: np.ndarray,
    prob: np.ndarray,
    threshold: float | np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Every metric of `classification_metrics` with a stratified percentile bootstrap CI.

    Args:
        y_true: Patient labels 0/1 (one row per patient: resampling patients, not images).
        prob: Predicted probabilities of malignancy.
        threshold: Operating threshold, scalar or per patient.
        n_boot: Number of bootstrap resamples.
        confidence: Confidence level of the interval.
        seed: Seed of the resampling.

    Returns:
        One row per metric (index ``METRIC_NAMES``), columns ``estimate, ci_low, ci_high``. A metric
        undefined in some resamples (PPV, NPV) has the percentile interval of the resamples where it is
        defined; one undefined in every resample (nobody called positive at all) has a NaN interval.
    """
    y_true, prob = _validated(y_true, prob)
    predicted = (prob >= np.broadcast_to(np.asarray(threshold, dtype=float), prob.shape)).astype(float)
    malignant = np.stack([prob[y_true == 1], predicted[y_true == 1]])
    benign = np.stack([prob[y_true == 0], predicted[y_true == 0]])
    with warnings.catch_warnings():
        # scipy warns "The BCa confidence interval cannot be calculated" whenever an interval comes out
        # NaN, whatever the method: here a PPV or NPV undefined in some resamples, handled just below
        warnings.simplefilter("ignore", DegenerateDataWarning)
        result = bootstrap(
            (malignant, benign),
            _metrics_from_resampled_classes,
            n_resamples=n_boot,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            axis=-1,
            rng=np.random.default_rng(seed),
        )
    low, high = _percentile_where_defined(result, confidence)
    estimates = classification_metrics(y_true, prob, threshold)
    return pd.DataFrame(
        {"estimate": [estimates[name] for name in METRIC_NAMES], "ci_low": low, "ci_high": high},
        index=pd.Index(METRIC_NAMES, name="metric"),
    )


def _percentile_where_defined(result, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """scipy's percentile bounds; where a metric was NaN in some resamples, those of the other resamples."""
    low = np.array(result.confidence_interval.low, dtype=float)
    high = np.array(result.confidence_interval.high, dtype=float)
    distribution = result.bootstrap_distribution
    alpha = (1 - confidence) / 2
    for metric in np.flatnonzero(~(np.isfinite(low) & np.isfinite(high))):
        defined = distribution[metric][np.isfinite(distribution[metric])]
        if defined.size:
            # scipy's percentile interval is numpy's default (linear) quantile of the distribution
            low[metric], high[metric] = np.quantile(defined, [alpha, 1 - alpha])
    return low, high


def summarise_predictions(
    predictions: pd.DataFrame, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> pd.Series:
    """Metrics with CIs from out-of-fold patient predictions, flattened for a results table.

    With several repeats each repeat is scored on its own (every patient once) and the estimates
    and CI bounds are averaged over repeats.

    Args:
        predictions: Out-of-fold table with ``repeat, y_true, prob, threshold`` (one row per
            patient and repeat), as returned by `cross_validate_patients`.
        n_boot: Bootstrap resamples per repeat.
        confidence: Confidence level.
        seed: Seed of the resampling.

    Returns:
        ``{metric}``, ``{metric}_ci_low``, ``{metric}_ci_high`` for every metric, and
        ``n_patients``.
    """
    per_repeat = [
        bootstrap_metrics(
            table["y_true"], table["prob"], table["threshold"], n_boot=n_boot, confidence=confidence, seed=seed
        )
        for _, table in predictions.groupby("repeat", sort=True)
    ]
    mean = sum(per_repeat) / len(per_repeat)
    flat = {}
    for metric, row in mean.iterrows():
        flat[metric] = row["estimate"]
        flat[f"{metric}_ci_low"] = row["ci_low"]
        flat[f"{metric}_ci_high"] = row["ci_high"]
    flat["n_patients"] = predictions.groupby("repeat").size().iloc[0]
    return pd.Series(flat)


def format_estimate(estimate: float, low: float, high: float, digits: int = 3) -> str:
    """Format ``0.912 (0.887-0.934)`` for tables.

    Args:
        estimate: Point estimate.
        low: Lower CI bound.
        high: Upper CI bound.
        digits: Decimal places.

    Returns:
        The formatted string.
    """
    return f"{estimate:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _metrics_from_resampled_classes(malignant: np.ndarray, benign: np.ndarray, axis: int = -1) -> np.ndarray:
    """Metrics of one batch of resamples; row 0 of each input is the probability, row 1 the call."""
    prob_malignant, called_malignant = malignant[0], malignant[1]
    prob_benign, called_benign = benign[0], benign[1]
    n_malignant, n_benign = prob_malignant.shape[axis], prob_benign.shape[axis]
    ranks = rankdata(np.concatenate([prob_malignant, prob_benign], axis=axis), axis=axis)
    rank_sum_malignant = ranks[..., :n_malignant].sum(axis=axis)
    auc = (rank_sum_malignant - n_malignant * (n_malignant + 1) / 2) / (n_malignant * n_benign)
    true_positive = called_malignant.sum(axis=axis)
    false_positive = called_benign.sum(axis=axis)
    true_negative = n_benign - false_positive
    false_negative = n_malignant - true_positive
    sensitivity = true_positive / n_malignant
    specificity = true_negative / n_benign
    with np.errstate(invalid="ignore", divide="ignore"):
        ppv = true_positive / (true_positive + false_positive)
        npv = true_negative / (true_negative + false_negative)
        f1 = 2 * true_positive / (2 * true_positive + false_positive + false_negative)
    brier = (((1 - prob_malignant) ** 2).sum(axis=axis) + (prob_benign**2).sum(axis=axis)) / (n_malignant + n_benign)
    return np.stack(
        [
            auc,
            (true_positive + true_negative) / (n_malignant + n_benign),
            sensitivity,
            specificity,
            (sensitivity + specificity) / 2,
            ppv,
            npv,
            f1,
            brier,
        ]
    )


def _validated(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(int)
    prob = np.asarray(prob, dtype=float)
    if y_true.shape != prob.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but prob has shape {prob.shape}")
    if not np.isfinite(prob).all():
        raise ValueError(f"{int((~np.isfinite(prob)).sum())} predicted probabilities are NaN or infinite")
    if set(np.unique(y_true)) != {0, 1}:
        raise ValueError(f"metrics need patients of both classes 0 and 1, got labels {np.unique(y_true).tolist()}")
    return y_true, prob

"""Data for ROC, calibration and decision curves (the report draws them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_curve


def roc_table(y_true: np.ndarray, prob: np.ndarray) -> pd.DataFrame:
    """ROC curve points.

    Args:
        y_true: Patient labels 0/1.
        prob: Predicted probabilities of malignancy.

    Returns:
        Columns ``threshold, fpr, tpr`` (``fpr`` = 1 - specificity, ``tpr`` = sensitivity).
    """
    fpr, tpr, thresholds = roc_curve(y_true, prob)
    return pd.DataFrame({"threshold": thresholds, "fpr": fpr, "tpr": tpr})


def calibration_table(
    y_true: np.ndarray, prob: np.ndarray, *, n_bins: int = 10, strategy: str = "quantile"
) -> pd.DataFrame:
    """Calibration (reliability) curve.

    Args:
        y_true: Patient labels 0/1.
        prob: Predicted probabilities of malignancy.
        n_bins: Number of bins.
        strategy: ``"quantile"`` (equal-count bins, robust with few patients) or ``"uniform"``.

    Returns:
        Columns ``mean_predicted, observed_fraction`` (one row per non-empty bin).
    """
    observed, predicted = calibration_curve(y_true, prob, n_bins=n_bins, strategy=strategy)
    return pd.DataFrame({"mean_predicted": predicted, "observed_fraction": observed})


def decision_curve(y_true: np.ndarray, prob: np.ndarray, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """Net benefit of the model, treat-all and treat-none across threshold probabilities.

    Vickers & Elkin (Med Decis Making 2006): at threshold probability ``pt`` a patient is treated
    (biopsied) when ``prob >= pt``, and ``net benefit = TP/n - FP/n * pt / (1 - pt)``.

    Args:
        y_true: Patient labels 0/1.
        prob: Predicted probabilities of malignancy.
        thresholds: Threshold probabilities in (0, 1); default 0.01 to 0.99 in steps of 0.01.

    Returns:
        Columns ``threshold, net_benefit_model, net_benefit_treat_all, net_benefit_treat_none``.
    """
    y_true = np.asarray(y_true).astype(int)
    prob = np.asarray(prob, dtype=float)
    thresholds = np.round(np.arange(1, 100) / 100, 2) if thresholds is None else np.asarray(thresholds, dtype=float)
    if ((thresholds <= 0) | (thresholds >= 1)).any():
        raise ValueError("decision-curve threshold probabilities must lie strictly between 0 and 1")
    n_patients = len(y_true)
    treated = prob[None, :] >= thresholds[:, None]
    true_positive = (treated & (y_true == 1)).sum(axis=1)
    false_positive = (treated & (y_true == 0)).sum(axis=1)
    harm_weight = thresholds / (1 - thresholds)
    prevalence = y_true.mean()
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "net_benefit_model": true_positive / n_patients - false_positive / n_patients * harm_weight,
            "net_benefit_treat_all": prevalence - (1 - prevalence) * harm_weight,
            "net_benefit_treat_none": 0.0,
        }
    )

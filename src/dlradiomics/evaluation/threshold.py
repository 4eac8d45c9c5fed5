"""Operating thresholds, chosen on training predictions only and frozen before the test set.

A patient is called malignant when its probability is at least the threshold.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

ThresholdRule = str | float
"""``"youden"`` (maximise sensitivity + specificity - 1), or a target sensitivity in (0, 1]."""


def youden_threshold(y_true: np.ndarray, prob: np.ndarray) -> float:
    """The threshold that maximises Youden's J on the given (training) predictions.

    Args:
        y_true: Labels 0/1.
        prob: Predicted probabilities of malignancy.

    Returns:
        The threshold; ties in J go to the higher threshold (fewer positives).
    """
    fpr, tpr, thresholds = roc_curve(y_true, prob, drop_intermediate=False)
    # roc_curve's first threshold is +inf (nobody positive); it can never maximise J usefully.
    youden = (tpr - fpr)[1:]
    return float(thresholds[1:][int(np.argmax(youden))])


def threshold_for_sensitivity(y_true: np.ndarray, prob: np.ndarray, target_sensitivity: float) -> float:
    """The highest threshold whose sensitivity on the given predictions reaches the target.

    Args:
        y_true: Labels 0/1.
        prob: Predicted probabilities of malignancy.
        target_sensitivity: Wanted sensitivity, in (0, 1].

    Returns:
        The threshold.

    Raises:
        ValueError: If the target is outside (0, 1].
    """
    if not 0 < target_sensitivity <= 1:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target_sensitivity}")
    _, tpr, thresholds = roc_curve(y_true, prob, drop_intermediate=False)
    reaching = np.flatnonzero(tpr >= target_sensitivity - 1e-12)
    return float(thresholds[reaching[0]])


def choose_threshold(y_true: np.ndarray, prob: np.ndarray, rule: ThresholdRule = "youden") -> float:
    """Apply a threshold rule to training predictions.

    Args:
        y_true: Labels 0/1.
        prob: Predicted probabilities of malignancy.
        rule: ``"youden"`` or a target sensitivity (float in (0, 1]).

    Returns:
        The threshold.

    Raises:
        ValueError: If the rule is unknown or the labels hold one class only.
    """
    y_true = np.asarray(y_true)
    if len(np.unique(y_true)) < 2:
        raise ValueError("a threshold needs training predictions of both classes")
    if isinstance(rule, str):
        if rule != "youden":
            raise ValueError(f"unknown threshold rule {rule!r}: use 'youden' or a target sensitivity")
        return youden_threshold(y_true, prob)
    return threshold_for_sensitivity(y_true, prob, float(rule))

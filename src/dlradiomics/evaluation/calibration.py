"""Calibration slope and intercept by logistic recalibration, with Wald confidence intervals.

Cox (Biometrika 1958); Van Calster et al. (J Clin Epidemiol 2016): regress the outcome on the
logit of the predicted probability.

- Slope: ``logit P(y=1) = a + b * logit(p)``; ``b`` is the calibration slope (1 ideal; below 1,
  predictions are too extreme, the usual sign of overfitting).
- Intercept (calibration-in-the-large): ``logit P(y=1) = a + logit(p)`` with the slope fixed at 1
  (an offset); ``a`` is 0 when the mean prediction matches the observed rate, negative when the
  model overestimates risk.

Both are unpenalised maximum-likelihood fits (scikit-learn's logistic regression with ``C=inf``
for the slope; a one-parameter convex minimisation for the intercept); the CIs come from the
observed Fisher information at the estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression

# Probabilities of exactly 0 or 1 have an infinite logit; they are moved this far inside (0, 1).
PROBABILITY_FLOOR = 1e-9


@dataclass(frozen=True)
class CalibrationFit:
    """Calibration slope and intercept with their confidence intervals.

    Args:
        slope: calibration slope (1 is ideal).
        slope_ci_low: lower bound of its CI.
        slope_ci_high: upper bound of its CI.
        intercept: calibration-in-the-large (0 is ideal).
        intercept_ci_low: lower bound of its CI.
        intercept_ci_high: upper bound of its CI.
        n: patients the fit used.
        note: why a value is missing (e.g. one class only), else empty.
    """

    slope: float
    slope_ci_low: float
    slope_ci_high: float
    intercept: float
    intercept_ci_low: float
    intercept_ci_high: float
    n: int
    note: str = ""

    def describe(self, digits: int = 2) -> str:
        """``slope 0.87 (0.71-1.03), intercept -0.05 (-0.31-0.21)`` for captions."""
        if self.note:
            return f"slope and intercept not estimable: {self.note}"
        return (f"slope {self.slope:.{digits}f} ({self.slope_ci_low:.{digits}f} to {self.slope_ci_high:.{digits}f}), "
                f"intercept {self.intercept:.{digits}f} ({self.intercept_ci_low:.{digits}f} to "
                f"{self.intercept_ci_high:.{digits}f})")


def calibration_slope_intercept(y_true: np.ndarray, prob: np.ndarray, *, confidence: float = 0.95) -> CalibrationFit:
    """Logistic recalibration of predicted probabilities against outcomes.

    Args:
        y_true: patient labels 0/1.
        prob: predicted probabilities of malignancy.
        confidence: level of the Wald intervals.

    Returns:
        The `CalibrationFit`; NaN values with a `note` when the data cannot support the fit (one
        class only, constant predictions, complete separation).
    """
    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(prob, dtype=float), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    if len(y) != len(p):
        raise ValueError(f"y_true has {len(y)} values and prob {len(p)}; they must match")
    z = norm.ppf(0.5 + confidence / 2)
    linear_predictor = logit(p)
    note = _unfit_reason(y, linear_predictor)
    if note:
        return CalibrationFit(*([math.nan] * 6), n=len(y), note=note)

    slope_model = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(linear_predictor[:, None], y)
    slope, slope_intercept = float(slope_model.coef_[0, 0]), float(slope_model.intercept_[0])
    fitted = expit(slope_intercept + slope * linear_predictor)
    design = np.column_stack([np.ones_like(linear_predictor), linear_predictor])
    information = design.T @ (design * (fitted * (1 - fitted))[:, None])
    slope_se = math.sqrt(np.linalg.inv(information)[1, 1])

    def negative_log_likelihood(shift: float) -> float:
        eta = shift + linear_predictor
        return float(np.sum(np.logaddexp(0, eta) - y * eta))

    intercept = float(minimize_scalar(negative_log_likelihood, bracket=(-1.0, 1.0), tol=1e-12).x)
    fitted = expit(intercept + linear_predictor)
    intercept_se = 1 / math.sqrt(float(np.sum(fitted * (1 - fitted))))
    return CalibrationFit(slope, slope - z * slope_se, slope + z * slope_se,
                          intercept, intercept - z * intercept_se, intercept + z * intercept_se, n=len(y))


def _unfit_reason(y: np.ndarray, linear_predictor: np.ndarray) -> str:
    if len(np.unique(y)) < 2:
        return "the patients hold one class only"
    if np.ptp(linear_predictor) == 0:
        return "every patient has the same predicted probability"
    benign, malignant = linear_predictor[y == 0], linear_predictor[y == 1]
    if benign.max() < malignant.min() or malignant.max() < benign.min():
        # Complete separation: the maximum-likelihood slope is infinite.
        return "the predictions separate the classes completely, so the slope is unbounded"
    return ""

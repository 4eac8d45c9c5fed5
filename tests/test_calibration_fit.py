"""Calibration slope and intercept against statsmodels' Logit, an independent maximum-likelihood fit."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit, logit

from dlradiomics.evaluation.calibration import calibration_slope_intercept


def _overfitted_predictions(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-0.4, 1.3, n)
    y = (rng.random(n) < expit(true_logit)).astype(int)
    # An overconfident, biased model: logits stretched (slope should come out < 1) and shifted.
    prob = expit(1.8 * true_logit + 0.5 + rng.normal(0, 0.4, n))
    return y, prob


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slope_and_intercept_match_statsmodels_logit(seed):
    y, prob = _overfitted_predictions(seed)
    fit = calibration_slope_intercept(y, prob)
    linear_predictor = logit(prob)

    slope_model = sm.Logit(y, sm.add_constant(linear_predictor)).fit(disp=0)
    slope_low, slope_high = slope_model.conf_int(alpha=0.05)[1]
    assert fit.slope == pytest.approx(slope_model.params[1], abs=1e-6)
    assert (fit.slope_ci_low, fit.slope_ci_high) == pytest.approx((slope_low, slope_high), abs=1e-5)

    intercept_model = sm.Logit(y, np.ones((len(y), 1)), offset=linear_predictor).fit(disp=0)
    intercept_low, intercept_high = intercept_model.conf_int(alpha=0.05)[0]
    assert fit.intercept == pytest.approx(intercept_model.params[0], abs=1e-6)
    assert (fit.intercept_ci_low, fit.intercept_ci_high) == pytest.approx((intercept_low, intercept_high), abs=1e-5)
    assert fit.slope < 1  # the stretched logits are overconfident
    assert fit.n == len(y) and fit.note == ""


def test_perfectly_calibrated_predictions_give_slope_one_and_intercept_zero_within_their_cis():
    rng = np.random.default_rng(5)
    prob = rng.uniform(0.02, 0.98, 4000)
    y = (rng.random(4000) < prob).astype(int)
    fit = calibration_slope_intercept(y, prob)
    assert fit.slope_ci_low < 1 < fit.slope_ci_high
    assert fit.intercept_ci_low < 0 < fit.intercept_ci_high


def test_data_that_cannot_support_the_fit_say_why():
    one_class = calibration_slope_intercept(np.zeros(10), np.linspace(0.1, 0.9, 10))
    assert np.isnan(one_class.slope) and "one class" in one_class.note
    separated = calibration_slope_intercept(np.array([0, 0, 0, 1, 1, 1]), np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]))
    assert np.isnan(separated.slope) and "separate" in separated.note
    assert "not estimable" in separated.describe()

"""ROC, calibration and decision-curve data; net benefit against the definition by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dlradiomics.evaluation.curves import calibration_table, decision_curve, roc_table

Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
PROB = np.array([0.9, 0.8, 0.55, 0.3, 0.7, 0.4, 0.35, 0.2, 0.1, 0.05])


def test_net_benefit_by_hand():
    # Vickers & Elkin 2006: NB = TP/n - FP/n * pt/(1-pt).
    curve = decision_curve(Y, PROB, thresholds=np.array([0.25, 0.5, 0.75]))
    # pt 0.25: treated 0.9 0.8 0.55 0.3 | 0.7 0.4 0.35 -> TP 4, FP 3; weight 1/3.
    # pt 0.5: treated 0.9 0.8 0.55 | 0.7 -> TP 3, FP 1; weight 1.
    # pt 0.75: treated 0.9 0.8 -> TP 2, FP 0; weight 3.
    np.testing.assert_allclose(curve["net_benefit_model"], [0.4 - 0.3 / 3, 0.3 - 0.1, 0.2])
    # Treat all: TP 4, FP 6 of 10.
    np.testing.assert_allclose(curve["net_benefit_treat_all"], [0.4 - 0.6 / 3, 0.4 - 0.6, 0.4 - 0.6 * 3])
    assert (curve["net_benefit_treat_none"] == 0).all()


def test_perfect_model_earns_the_prevalence_at_every_threshold():
    curve = decision_curve(Y, Y.astype(float) * 0.998 + 0.001)
    np.testing.assert_allclose(curve["net_benefit_model"], Y.mean())
    assert len(curve) == 99


def test_bad_threshold_probabilities_are_rejected():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        decision_curve(Y, PROB, thresholds=np.array([0.0, 0.5]))


def test_roc_table_runs_from_origin_to_corner():
    table = roc_table(Y, PROB)
    assert (table["fpr"].iloc[0], table["tpr"].iloc[0]) == (0.0, 0.0)
    assert (table["fpr"].iloc[-1], table["tpr"].iloc[-1]) == (1.0, 1.0)
    assert np.trapezoid(table["tpr"], table["fpr"]) == pytest.approx(20 / 24)


def test_calibration_of_a_calibrated_model_lies_near_the_diagonal():
    rng = np.random.default_rng(0)
    prob = rng.random(20000)
    y = (rng.random(20000) < prob).astype(int)
    table = calibration_table(y, prob, n_bins=5)
    np.testing.assert_allclose(table["observed_fraction"], table["mean_predicted"], atol=0.03)

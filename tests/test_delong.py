"""DeLong's test (fast Sun & Xu algorithm) against a brute-force version, a published example and
its null distribution; the paired bootstrap against DeLong."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dlradiomics.evaluation.stats import (
    delong_auc_ci,
    delong_covariance,
    delong_test,
    paired_bootstrap_auc_test,
)


def brute_force_delong_covariance(y, scores):
    """DeLong 1988 by definition: psi over all malignant x benign pairs (O(n^2))."""
    malignant, benign = scores[:, y == 1], scores[:, y == 0]
    psi = (malignant[:, :, None] > benign[:, None, :]) + 0.5 * (malignant[:, :, None] == benign[:, None, :])
    v10 = psi.mean(axis=2)  # per malignant patient
    v01 = psi.mean(axis=1)  # per benign patient
    aucs = psi.mean(axis=(1, 2))
    k = scores.shape[0]
    s10 = np.array([[np.cov(v10[a], v10[b])[0, 1] for b in range(k)] for a in range(k)])
    s01 = np.array([[np.cov(v01[a], v01[b])[0, 1] for b in range(k)] for a in range(k)])
    return aucs, s10 / malignant.shape[1] + s01 / benign.shape[1]


def test_fast_delong_equals_brute_force_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 150)
    base = rng.normal(y, 1)
    scores = np.round(np.vstack([base + rng.normal(0, 0.5, 150), base + rng.normal(0, 1.0, 150), rng.random(150)]), 1)
    aucs, covariance = delong_covariance(y, scores)
    expected_aucs, expected_covariance = brute_force_delong_covariance(y, scores)
    np.testing.assert_allclose(aucs, expected_aucs, rtol=1e-12)
    np.testing.assert_allclose(covariance, expected_covariance, rtol=1e-10)
    np.testing.assert_allclose(aucs, [roc_auc_score(y, row) for row in scores])


def test_hanley_mcneil_ct_example():
    # Hanley & McNeil, Radiology 1982, Table 1: 5-point ratings of 58 normal and 51 abnormal CT
    # images; published AUC 0.893 with standard error 0.032.
    normal_counts, abnormal_counts = [33, 6, 6, 11, 2], [3, 2, 2, 11, 33]
    ratings = np.r_[np.repeat(np.arange(1, 6), normal_counts), np.repeat(np.arange(1, 6), abnormal_counts)]
    y = np.r_[np.zeros(58, int), np.ones(51, int)]
    auc, low, high = delong_auc_ci(y, ratings)
    _, covariance = delong_covariance(y, ratings)
    assert auc == pytest.approx(0.893, abs=0.0005)
    assert np.sqrt(covariance[0, 0]) == pytest.approx(0.032, abs=0.004)
    assert low < auc < high


def test_delong_p_values_hold_their_size_under_the_null():
    rng = np.random.default_rng(11)
    rejections = 0
    n_trials = 400
    for _ in range(n_trials):
        y = np.r_[np.ones(40, int), np.zeros(60, int)]
        truth = rng.normal(y, 1)
        # Two equally good, correlated readers of the same patients.
        result = delong_test(y, truth + rng.normal(0, 0.7, 100), truth + rng.normal(0, 0.7, 100))
        rejections += result.p_value < 0.05
    assert 0.025 <= rejections / n_trials <= 0.08


def test_delong_detects_a_better_model_and_is_antisymmetric():
    rng = np.random.default_rng(5)
    y = np.r_[np.ones(100, int), np.zeros(150, int)]
    strong, weak = rng.normal(2.0 * y, 1), rng.normal(0.5 * y, 1)
    forward, backward = delong_test(y, strong, weak), delong_test(y, weak, strong)
    assert forward.p_value < 1e-4
    assert forward.difference == pytest.approx(-backward.difference)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.ci_low > 0


def test_identical_models_give_p_one():
    y = np.r_[np.ones(10, int), np.zeros(10, int)]
    scores = np.linspace(0, 1, 20)
    assert delong_test(y, scores, scores).p_value == 1.0
    assert paired_bootstrap_auc_test(y, scores, scores, n_boot=200).p_value == 1.0


def test_paired_bootstrap_agrees_with_delong_on_a_large_sample():
    rng = np.random.default_rng(8)
    y = np.r_[np.ones(200, int), np.zeros(300, int)]
    truth = rng.normal(y, 1)
    a, b = truth + rng.normal(0, 0.5, 500), truth + rng.normal(0, 1.5, 500)
    delong, boot = delong_test(y, a, b), paired_bootstrap_auc_test(y, a, b, n_boot=2000, seed=1)
    assert boot.difference == pytest.approx(delong.difference)
    assert boot.standard_error == pytest.approx(delong.standard_error, rel=0.15)
    assert boot.ci_low < delong.difference < boot.ci_high

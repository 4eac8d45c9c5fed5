"""Metrics, thresholds and bootstrap CIs on hand-computed and simulated cases."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from dlradiomics.evaluation.metrics import (
    METRIC_NAMES,
    _metrics_from_resampled_classes,
    bootstrap_metrics,
    classification_metrics,
    summarise_predictions,
)
from dlradiomics.evaluation.threshold import choose_threshold, threshold_for_sensitivity, youden_threshold

Y_SMALL = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
PROB_SMALL = np.array([0.9, 0.8, 0.55, 0.3, 0.7, 0.4, 0.35, 0.2, 0.1, 0.05])


def test_metrics_match_hand_counts():
    # At 0.5: called malignant 0.9, 0.8, 0.55 (true) and 0.7 (false): TP 3, FN 1, FP 1, TN 5.
    metrics = classification_metrics(Y_SMALL, PROB_SMALL, 0.5)
    assert metrics["sensitivity"] == pytest.approx(3 / 4)
    assert metrics["specificity"] == pytest.approx(5 / 6)
    assert metrics["accuracy"] == pytest.approx(8 / 10)
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    assert metrics["ppv"] == pytest.approx(3 / 4)
    assert metrics["npv"] == pytest.approx(5 / 6)
    assert metrics["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    # Of 24 malignant-benign pairs, 0.3 is outranked by 0.7, 0.4 and 0.35; 0.55 by 0.7: 20 / 24.
    assert metrics["auc"] == pytest.approx(20 / 24)
    expected_brier = np.mean((PROB_SMALL - Y_SMALL) ** 2)
    assert metrics["brier"] == pytest.approx(expected_brier)


def test_per_patient_thresholds_are_applied_row_by_row():
    thresholds = np.where(np.arange(10) < 5, 0.95, 0.0)
    metrics = classification_metrics(Y_SMALL, PROB_SMALL, thresholds)
    # First five patients (4 malignant, 1 benign) all negative; last five all positive (benign).
    assert metrics["sensitivity"] == 0.0
    assert metrics["specificity"] == pytest.approx(1 / 6)


def test_vectorised_bootstrap_statistic_agrees_with_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    y[:2] = [0, 1]
    prob = np.round(rng.random(60), 1)  # rounding makes ties, which the AUC must count as half
    for threshold in (0.3, 0.5, 0.8):
        called = (prob >= threshold).astype(float)
        vectorised = _metrics_from_resampled_classes(
            np.stack([prob[y == 1], called[y == 1]]), np.stack([prob[y == 0], called[y == 0]])
        )
        reference = classification_metrics(y, prob, threshold)
        np.testing.assert_allclose(vectorised, [reference[name] for name in METRIC_NAMES], rtol=1e-12)


def test_bootstrap_table_brackets_estimates_and_is_seeded():
    table = bootstrap_metrics(Y_SMALL, PROB_SMALL, 0.5, n_boot=300, seed=5)
    assert list(table.index) == list(METRIC_NAMES)
    assert (table["ci_low"] <= table["estimate"] + 1e-12).all()
    assert (table["estimate"] <= table["ci_high"] + 1e-12).all()
    pd.testing.assert_frame_equal(table, bootstrap_metrics(Y_SMALL, PROB_SMALL, 0.5, n_boot=300, seed=5))


def test_perfect_separation_gives_finite_degenerate_intervals_without_warnings():
    y = np.r_[np.ones(10, int), np.zeros(30, int)]
    prob = np.r_[np.linspace(0.8, 0.9, 10), np.linspace(0.1, 0.2, 30)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's DegenerateDataWarning, numpy's RuntimeWarnings: none escapes
        table = bootstrap_metrics(y, prob, 0.5, n_boot=200, seed=0)
    assert np.isfinite(table[["ci_low", "ci_high"]].to_numpy()).all()
    for metric in ("auc", "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"):
        assert tuple(table.loc[metric, ["ci_low", "ci_high"]]) == (1.0, 1.0)


def test_ppv_and_npv_undefined_in_some_resamples_take_the_interval_of_the_others_quietly():
    # Only one patient is called positive (a malignant one), then only one negative (a benign one): a
    # class-stratified resample misses that patient with probability (9/10)^10 or (29/30)^30, so PPV or
    # NPV is undefined in many resamples; wherever it is defined it is exactly 1 (no false call).
    y = np.r_[np.ones(10, int), np.zeros(30, int)]
    one_positive_call = np.r_[0.95, np.full(9, 0.6), np.full(30, 0.4)]
    one_negative_call = np.r_[np.full(10, 0.6), 0.05, np.full(29, 0.4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's DegenerateDataWarning, numpy's RuntimeWarnings: none escapes
        ppv_table = bootstrap_metrics(y, one_positive_call, 0.9, n_boot=300, seed=1)
        npv_table = bootstrap_metrics(y, one_negative_call, 0.3, n_boot=300, seed=1)
    for table, metric in ((ppv_table, "ppv"), (npv_table, "npv")):
        assert tuple(table.loc[metric, ["estimate", "ci_low", "ci_high"]]) == (1.0, 1.0, 1.0)
        assert np.isfinite(table[["ci_low", "ci_high"]].to_numpy()).all()
    assert ppv_table.loc["sensitivity", "ci_high"] > 0  # the other intervals are scipy's, untouched


def test_a_ppv_undefined_everywhere_keeps_a_nan_interval_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = bootstrap_metrics(Y_SMALL, PROB_SMALL, 0.99, n_boot=100, seed=0)  # nobody called positive
    assert np.isnan(table.loc["ppv", ["estimate", "ci_low", "ci_high"]].to_numpy(dtype=float)).all()
    assert np.isfinite(table.loc["npv", ["ci_low", "ci_high"]].to_numpy(dtype=float)).all()


def test_bootstrap_auc_interval_covers_the_true_auc_about_95_percent_of_the_time():
    # Binormal model: malignant ~ N(d, 1), benign ~ N(0, 1) -> true AUC = Phi(d / sqrt 2).
    separation = 1.0
    true_auc = norm.cdf(separation / np.sqrt(2))
    rng = np.random.default_rng(2024)
    covered = 0
    n_trials = 200
    for trial in range(n_trials):
        y = np.r_[np.ones(40, int), np.zeros(60, int)]
        scores = rng.normal(separation * y, 1.0)
        prob = 1 / (1 + np.exp(-scores))
        table = bootstrap_metrics(y, prob, 0.5, n_boot=400, seed=trial)
        covered += table.loc["auc", "ci_low"] <= true_auc <= table.loc["auc", "ci_high"]
    assert 0.89 <= covered / n_trials <= 0.99


def test_summary_averages_repeats_and_counts_patients():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(30, int), np.zeros(50, int)]
    frames = []
    for repeat in range(2):
        prob = 1 / (1 + np.exp(-rng.normal(1.5 * y, 1)))
        frames.append(pd.DataFrame({"repeat": repeat, "y_true": y, "prob": prob, "threshold": 0.5}))
    oof = pd.concat(frames)
    summary = summarise_predictions(oof, n_boot=200)
    per_repeat = [roc_auc_score(frame["y_true"], frame["prob"]) for frame in frames]
    assert summary["auc"] == pytest.approx(np.mean(per_repeat))
    assert summary["n_patients"] == 80
    assert summary["auc_ci_low"] < summary["auc"] < summary["auc_ci_high"]


def test_metrics_reject_one_class_and_nan():
    with pytest.raises(ValueError, match="both classes"):
        classification_metrics(np.zeros(5), np.linspace(0, 1, 5), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(Y_SMALL, np.r_[PROB_SMALL[:-1], np.nan], 0.5)


def test_youden_threshold_maximises_sensitivity_plus_specificity():
    threshold = youden_threshold(Y_SMALL, PROB_SMALL)
    best = max(
        classification_metrics(Y_SMALL, PROB_SMALL, t)["sensitivity"]
        + classification_metrics(Y_SMALL, PROB_SMALL, t)["specificity"]
        for t in PROB_SMALL
    )
    chosen = classification_metrics(Y_SMALL, PROB_SMALL, threshold)
    assert chosen["sensitivity"] + chosen["specificity"] == pytest.approx(best)


def test_sensitivity_target_gives_the_highest_threshold_reaching_it():
    threshold = threshold_for_sensitivity(Y_SMALL, PROB_SMALL, 0.75)
    assert threshold == 0.55  # 0.9, 0.8, 0.55 are 3 of 4 malignant
    assert choose_threshold(Y_SMALL, PROB_SMALL, 1.0) == 0.3
    with pytest.raises(ValueError, match="unknown threshold rule"):
        choose_threshold(Y_SMALL, PROB_SMALL, "best")

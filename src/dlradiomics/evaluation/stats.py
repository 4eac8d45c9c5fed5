"""Comparing correlated AUCs of two models scored on the same patients: DeLong and paired bootstrap.

The DeLong test (DeLong, DeLong & Clarke-Pearson 1988) uses the fast midrank algorithm of Sun & Xu
(IEEE Signal Process. Lett. 2014), O(n log n) instead of the O(n^2) pairwise comparisons; no
maintained Python library provides it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, norm, rankdata


@dataclass(frozen=True)
class AucComparison:
    """Result of a test of two correlated AUCs.

    Args:
        auc_a: AUC of model A.
        auc_b: AUC of model B.
        difference: ``auc_a - auc_b``.
        standard_error: Standard error of the difference.
        z: ``difference / standard_error``.
        p_value: Two-sided p-value.
        ci_low: Lower bound of the 95% CI of the difference.
        ci_high: Upper bound of the 95% CI of the difference.
        method: ``"delong"`` or ``"paired bootstrap"``.
    """

    auc_a: float
    auc_b: float
    difference: float
    standard_error: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    method: str


def delong_covariance(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of several models on the same patients and DeLong's covariance matrix of them.

    Args:
        y_true: Patient labels 0/1, shape ``(n,)``.
        scores: Model scores, shape ``(k, n)`` (or ``(n,)`` for one model).

    Returns:
        ``(aucs, covariance)``: shape ``(k,)`` and ``(k, k)``.
    """
    y_true = np.asarray(y_true).astype(int)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if scores.shape[1] != len(y_true):
        raise ValueError(f"scores have {scores.shape[1]} patients but y_true has {len(y_true)}")
    malignant = scores[:, y_true == 1]
    benign = scores[:, y_true == 0]
    n_malignant, n_benign = malignant.shape[1], benign.shape[1]
    if n_malignant == 0 or n_benign == 0:
        raise ValueError("DeLong needs patients of both classes")
    rank_within_malignant = rankdata(malignant, axis=1)
    rank_within_benign = rankdata(benign, axis=1)
    rank_overall = rankdata(np.hstack([malignant, benign]), axis=1)
    aucs = (rank_overall[:, :n_malignant].sum(axis=1) - n_malignant * (n_malignant + 1) / 2) / (n_malignant * n_benign)
    # Structural components: the share of benign patients each malignant patient outranks, and
    # the share of malignant patients that outrank each benign patient (Sun & Xu, eq. 8-9).
    components_malignant = (rank_overall[:, :n_malignant] - rank_within_malignant) / n_benign
    components_benign = 1.0 - (rank_overall[:, n_malignant:] - rank_within_benign) / n_malignant
    covariance = (
        np.atleast_2d(np.cov(components_malignant)) / n_malignant + np.atleast_2d(np.cov(components_benign)) / n_benign
    )
    return aucs, covariance


def delong_auc_ci(y_true: np.ndarray, prob: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """AUC with DeLong's asymptotic confidence interval (clipped to [0, 1]).

    Args:
        y_true: Patient labels 0/1.
        prob: Scores.
        confidence: Confidence level.

    Returns:
        ``(auc, ci_low, ci_high)``.
    """
    aucs, covariance = delong_covariance(y_true, prob)
    half_width = norm.ppf(0.5 + confidence / 2) * np.sqrt(covariance[0, 0])
    return float(aucs[0]), float(max(aucs[0] - half_width, 0.0)), float(min(aucs[0] + half_width, 1.0))


def delong_test(y_true: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray) -> AucComparison:
    """DeLong's test of two correlated AUCs (two models, the same patients).

    Args:
        y_true: Patient labels 0/1.
        prob_a: Scores of model A for the same patients, in the same order.
        prob_b: Scores of model B.

    Returns:
        The comparison; ``p_value`` is two-sided (1.0 when the two score sets rank identically).
    """
    aucs, covariance = delong_covariance(y_true, np.vstack([prob_a, prob_b]))
    difference = float(aucs[0] - aucs[1])
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    standard_error = float(np.sqrt(max(variance, 0.0)))
    if standard_error == 0.0:
        z, p_value = 0.0, 1.0
    else:
        z = difference / standard_error
        p_value = float(2 * norm.sf(abs(z)))
    half_width = norm.ppf(0.975) * standard_error
    return AucComparison(
        float(aucs[0]),
        float(aucs[1]),
        difference,
        standard_error,
        z,
        p_value,
        float(difference - half_width),
        float(difference + half_width),
        "delong",
    )


def paired_bootstrap_auc_test(
    y_true: np.ndarray, prob_a: np.ndarray, prob_b: np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> AucComparison:
    """Paired, class-stratified bootstrap of the AUC difference of two models on the same patients.

    Each resample draws the same patients for both models. The p-value follows pROC's bootstrap
    test: ``z = difference / sd(bootstrap differences)``, two-sided normal.

    Args:
        y_true: Patient labels 0/1.
        prob_a: Scores of model A.
        prob_b: Scores of model B, same patients and order.
        n_boot: Number of resamples.
        seed: Seed of the resampling.

    Returns:
        The comparison with a percentile 95% CI of the difference.
    """
    y_true = np.asarray(y_true).astype(int)
    scores = np.vstack([np.asarray(prob_a, dtype=float), np.asarray(prob_b, dtype=float)])
    result = bootstrap(
        (scores[:, y_true == 1], scores[:, y_true == 0]),
        _auc_difference,
        n_resamples=n_boot,
        method="percentile",
        vectorized=True,
        axis=-1,
        rng=np.random.default_rng(seed),
    )
    aucs, _ = delong_covariance(y_true, scores)
    difference = float(aucs[0] - aucs[1])
    standard_error = float(np.std(result.bootstrap_distribution, ddof=1))
    z = difference / standard_error if standard_error > 0 else 0.0
    p_value = float(2 * norm.sf(abs(z))) if standard_error > 0 else 1.0
    return AucComparison(
        float(aucs[0]),
        float(aucs[1]),
        difference,
        standard_error,
        z,
        p_value,
        float(result.confidence_interval.low),
        float(result.confidence_interval.high),
        "paired bootstrap",
    )


def _auc_difference(malignant: np.ndarray, benign: np.ndarray, axis: int = -1) -> np.ndarray:
    """AUC of model A minus AUC of model B for a batch of resamples (row 0: A, row 1: B)."""
    n_malignant, n_benign = malignant.shape[axis], benign.shape[axis]
    ranks = rankdata(np.concatenate([malignant, benign], axis=axis), axis=axis)
    aucs = (ranks[..., :n_malignant].sum(axis=axis) - n_malignant * (n_malignant + 1) / 2) / (n_malignant * n_benign)
    return aucs[0] - aucs[1]

"""The clinical operating point: McNemar against independent references, the reference comparison,
choice by inner-CV specificity at a target sensitivity, and leave-one-site-out folds."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar as statsmodels_mcnemar

from dlradiomics.evaluation import (
    GridResult,
    compare_with_reference,
    cross_validate_patients,
    fold_table_from_groups,
    mcnemar_test,
    per_site_metrics,
)
from dlradiomics.models import make_pipeline


def _paired(b: int, c: int, both_right: int = 5, both_wrong: int = 3) -> tuple[np.ndarray, np.ndarray]:
    first = np.array([True] * b + [False] * c + [True] * both_right + [False] * both_wrong)
    second = np.array([False] * b + [True] * c + [True] * both_right + [False] * both_wrong)
    return first, second


@pytest.mark.parametrize(("b", "c"), [(1, 6), (6, 1), (0, 5), (12, 30), (40, 41), (3, 3), (0, 0), (17, 4)])
def test_mcnemar_exact_matches_statsmodels(b, c):
    result = mcnemar_test(*_paired(b, c))
    table = [[5, b], [c, 3]]
    reference = statsmodels_mcnemar(table, exact=True)
    assert (result.first_only, result.second_only) == (b, c)
    assert result.p_exact == pytest.approx(reference.pvalue, abs=1e-12)


def test_mcnemar_by_hand_on_a_small_table():
    # b = 1, c = 6: seven discordant pairs. P(X <= 1) for X ~ Bin(7, 1/2) is (1 + 7) / 128.
    result = mcnemar_test(*_paired(1, 6))
    assert result.p_exact == pytest.approx(2 * 8 / 128)
    # mid-p: twice the tail less the probability of the observed table, 2 * (8 - 7/2) / 128.
    assert result.p_mid == pytest.approx(2 * (8 - 3.5) / 128)
    assert result.p_mid < result.p_exact
    tie = mcnemar_test(*_paired(3, 3))
    assert tie.p_exact == 1.0 and tie.p_mid == pytest.approx(1.0)
    none = mcnemar_test(*_paired(0, 0))
    assert (none.discordant, none.p_exact, none.p_mid) == (0, 1.0, 1.0)


def test_the_reference_comparison_pairs_patients_and_tests_each_class():
    # 10 benign, 10 malignant. The reference (BI-RADS >= 4) calls benign p0-p3 malignant (spec 0.6);
    # the model at its thresholds calls only p0 malignant among the benign (spec 0.9).
    patients = [f"p{k}" for k in range(20)]
    y_true = np.array([0] * 10 + [1] * 10)
    birads = np.array([4, 4, 5, 4, 2, 3, 2, 3, 2, 3] + [4, 5, 5, 4, 4, 5, 4, 3, 4, 5], dtype=float)
    prob = np.array([0.7] + [0.1 + 0.02 * k for k in range(9)] + [0.8, 0.9, 0.85, 0.3, 0.7, 0.95, 0.75, 0.6, 0.8, 0.9])
    predictions = pd.DataFrame({"patient_id": patients, "repeat": 0, "fold": 0, "y_true": y_true, "prob": prob,
                                "threshold": 0.5})
    scores = pd.Series(birads, index=patients)
    scores["p_unknown"] = 4.0  # a patient without prediction is not compared
    comparison = compare_with_reference(predictions, scores, positive_at=4, reference="radiologist", n_boot=200)
    assert (comparison.n_patients, comparison.n_benign, comparison.n_malignant) == (20, 10, 10)
    assert comparison.model.loc["specificity", "estimate"] == pytest.approx(0.9)
    assert comparison.reference_metrics.loc["specificity", "estimate"] == pytest.approx(0.6)
    assert comparison.reference_metrics.loc["sensitivity", "estimate"] == pytest.approx(0.9)
    assert comparison.model.loc["sensitivity", "estimate"] == pytest.approx(0.9)
    # Benign: the model alone right on p1, p2, p3 (b = 3), the reference alone on none (c = 0).
    assert (comparison.specificity_test.first_only, comparison.specificity_test.second_only) == (3, 0)
    assert comparison.specificity_test.p_exact == pytest.approx(0.25)
    # Malignant: model misses p13 (reference right), reference misses p17 (model right): b = c = 1.
    assert (comparison.sensitivity_test.first_only, comparison.sensitivity_test.second_only) == (1, 1)
    # The reference's AUC is that of the BI-RADS score itself, ties included.
    from sklearn.metrics import roc_auc_score
    assert comparison.reference_metrics.loc["auc", "estimate"] == pytest.approx(roc_auc_score(y_true, birads))
    assert comparison.auc_test.auc_b == pytest.approx(roc_auc_score(y_true, birads))


def _results(rows):
    frame = pd.DataFrame(rows)
    frame["status"] = "ok"
    frame["modalities"] = "US"
    frame["fusion"] = "single"
    return frame


def test_choice_at_the_clinical_operating_point_compares_inner_specificity():
    results = _results([
        {"source": "radiomic", "classifier": "logistic", "inner_auc": 0.93, "inner_specificity": 0.70},
        {"source": "radiomic+clinical", "classifier": "logistic", "inner_auc": 0.92, "inner_specificity": 0.80},
        {"source": "radiomic", "classifier": "svm", "inner_auc": 0.90, "inner_specificity": 0.80},
    ])
    by_auc = GridResult(results=results, oof=pd.DataFrame(), fold_table=pd.DataFrame())
    by_specificity = GridResult(results=results, oof=pd.DataFrame(), fold_table=pd.DataFrame(),
                                choose_by="specificity_at_sensitivity")
    assert by_auc.best["classifier"] == "logistic" and by_auc.best["source"] == "radiomic"
    # Equal inner specificity: the inner AUC breaks the tie.
    assert by_specificity.best["source"] == "radiomic+clinical"
    assert "specificity" in by_specificity.selection_rule
    with pytest.raises(ValueError, match="choose_by"):
        GridResult(results=results, oof=pd.DataFrame(), fold_table=pd.DataFrame(), choose_by="test_auc")


def test_inner_specificity_is_read_at_the_threshold_frozen_for_the_target_sensitivity():
    rng = np.random.default_rng(0)
    n = 120
    y = np.arange(n) % 2
    X = pd.DataFrame({"US.radiomic__a": rng.normal(size=n) + 1.5 * y, "US.radiomic__b": rng.normal(size=n)},
                     index=pd.Index([f"p{k}" for k in range(n)], name="patient_id"))
    oof = cross_validate_patients(make_pipeline("logistic", None), X, y, threshold=0.9, inner_splits=3)
    per_fold = oof.groupby("fold")[["inner_sensitivity", "inner_specificity"]].first()
    assert (per_fold["inner_sensitivity"] >= 0.9).all()
    assert per_fold["inner_specificity"].between(0.2, 0.95).all()


def test_leave_one_site_out_folds_hold_each_site_out_once():
    table = pd.DataFrame({"patient_id": ["a", "a", "b", "c", "d", "e"],
                          "device": ["GE", "GE", "Toshiba", "GE ", "U-Systems", "Toshiba"]})
    folds = fold_table_from_groups(table, "device")
    assert folds.set_index("patient_id")["group"].to_dict() == {"a": "GE", "b": "Toshiba", "c": "GE",
                                                                "d": "U-Systems", "e": "Toshiba"}
    assert folds.groupby("group")["fold"].nunique().eq(1).all() and folds["fold"].nunique() == 3
    table.loc[1, "device"] = "Toshiba"
    with pytest.raises(ValueError, match="patient a has images in several groups"):
        fold_table_from_groups(table, "device")
    table.loc[1, "device"] = None
    table.loc[0, "device"] = "  "
    with pytest.raises(ValueError, match=r"patients \['a'\] have no value"):
        fold_table_from_groups(table, "device")


def _wilson(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return centre - half, centre + half


def test_per_site_metrics_say_when_a_site_is_too_small():
    folds = pd.DataFrame({"patient_id": [f"p{k}" for k in range(30)], "repeat": 0,
                          "fold": [0] * 24 + [1] * 4 + [2] * 2,
                          "group": ["GE"] * 24 + ["U-Systems"] * 4 + ["Philips"] * 2})
    y_true = [0] * 12 + [1] * 12 + [0, 0, 1, 1] + [0, 0]
    prob = [0.1] * 10 + [0.9] * 2 + [0.8] * 11 + [0.2] + [0.3, 0.6, 0.7, 0.4] + [0.1, 0.2]
    predictions = folds.assign(y_true=y_true, prob=prob, threshold=0.5)
    table = per_site_metrics(predictions, folds).set_index("group")
    assert table.loc["GE", "specificity"] == pytest.approx(10 / 12)
    assert (table.loc["GE", "specificity_ci_low"], table.loc["GE", "specificity_ci_high"]) == \
        pytest.approx(_wilson(10, 12))
    assert "wide intervals" in table.loc["U-Systems", "note"] and "2 benign and 2 malignant" in table.loc[
        "U-Systems", "note"]
    assert np.isnan(table.loc["Philips", "auc"]) and np.isnan(table.loc["Philips", "sensitivity"])
    assert "only benign patients" in table.loc["Philips", "note"]


def test_per_site_metrics_one_patient_of_a_class_gives_the_auc_without_an_interval():
    folds = pd.DataFrame({"patient_id": ["a", "b", "c"], "repeat": 0, "fold": 0, "group": "Toshiba"})
    # The malignant patient (0.6) outranks one benign patient (0.2) of two (0.7): AUC 1/2.
    predictions = folds.assign(y_true=[0, 0, 1], prob=[0.2, 0.7, 0.6], threshold=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no zero-degrees-of-freedom variance
        row = per_site_metrics(predictions, folds).iloc[0]
    assert row["auc"] == pytest.approx(0.5) and np.isnan(row["auc_ci_low"]) and np.isnan(row["auc_ci_high"])
    assert "no interval for the AUC" in row["note"]

"""The headline: the chosen model, its numbers, the runner-up with DeLong's p, coverage and the canary's verdict."""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd
import pytest

from dlradiomics.evaluation import delong_test, run_grid
from dlradiomics.evaluation.canary import GridCanaryVerdict
from dlradiomics.report.headline import (
    CanaryVerdict,
    Estimate,
    ReferenceOperatingPoint,
    build_headline,
    canary_verdict,
    configuration_label,
    reference_from_comparison,
    runner_up_comparison,
)
from dlradiomics.study.stages import GridStage, log_canary_verdict
from evaluation_data import make_feature_tables


@pytest.fixture(scope="module")
def grid():
    tables = make_feature_tables(n_patients=70, modalities=("US",), seed=3)
    return run_grid(tables, sources=["radiomic"], classifiers=["logistic", "knn"], fusions=["early"], n_boot=30,
                    seed=0)


def test_the_headline_names_the_chosen_model_and_its_runner_up_by_inner_auc(grid):
    headline = build_headline(grid, patients=75, threshold_rule="thresholds frozen on training folds by Youden's J",
                              n_boot=30)
    ranked = grid.completed.sort_values("inner_auc", ascending=False)
    best, second = ranked.iloc[0], ranked.iloc[1]
    assert headline.model == configuration_label(best)
    assert headline.auc.value == pytest.approx(best["auc"])
    assert headline.sensitivity.value == pytest.approx(best["sensitivity"])
    label, auc, p = headline.runner_up
    assert label == configuration_label(second) and auc == pytest.approx(second["auc"])
    a = grid.predictions_of(best).set_index("patient_id").sort_index()
    b = grid.predictions_of(second).set_index("patient_id").sort_index()
    assert p == pytest.approx(delong_test(a["y_true"].to_numpy(), a["prob"].to_numpy(), b["prob"].to_numpy()).p_value)
    assert (headline.scored, headline.patients) == (70, 75)
    lines = headline.lines()
    assert lines[0].startswith(f"Chosen model: {configuration_label(best)}")
    assert any(line.startswith("Coverage: 70 of 75 patients scored (5 lack") for line in lines)
    assert any(line.startswith("Runner-up: ") and "DeLong p = " in line for line in lines)
    assert lines[-1] == "Leakage canary: not run"
    assert headline.procedure_auc is not None  # both configurations scored the same patients


def test_the_canary_is_flagged_outside_its_band_in_either_direction():
    assert CanaryVerdict(Estimate(0.52, 0.45, 0.59), "x").passed
    low = CanaryVerdict(Estimate(0.307, 0.17, 0.45), "x")
    high = CanaryVerdict(Estimate(0.66, 0.60, 0.72), "x")
    assert not low.passed and "PROBLEM" in low.describe() and "below" in low.describe()
    assert not high.passed and "above" in high.describe()
    assert "anti-signal" in low.describe() and "see test labels" in high.describe()  # their CIs exclude 0.5
    assert "chance" not in low.describe() + high.describe()


def test_a_canary_outside_its_band_whose_ci_contains_half_reads_as_chance_first():
    noisy = CanaryVerdict(Estimate(0.370, 0.192, 0.513), "x", n_patients=40)  # the demo's 40 patients
    assert not noisy.passed  # still flagged: the band is the rule
    assert noisy.describe().startswith("outside [0.40, 0.60] but its 95% CI contains 0.5: consistent with chance on "
                                       "40 patients; rerun with more patients or repeats")
    assert "AUC 0.370 (0.192-0.513)" in noisy.describe()
    assert "PROBLEM" not in noisy.describe() and "anti-signal" not in noisy.describe()
    above = CanaryVerdict(Estimate(0.63, 0.46, 0.80), "x", n_patients=30)
    assert above.describe().startswith("outside [0.40, 0.60] but its 95% CI contains 0.5: consistent with chance on 30")
    assert "see test labels" not in above.describe()


def test_a_canary_grid_gives_the_whole_procedures_verdict(grid):
    verdict = canary_verdict(grid, n_boot=30, seed=0)
    assert "whole procedure over 2 configurations" in verdict.what
    assert verdict.n_patients == grid.nested_selection_predictions()["patient_id"].nunique() == 70


def test_the_run_log_words_each_flagged_canary_auc_as_strongly_as_its_ci(grid, caplog):
    table = pd.DataFrame({"what": ["noisy one", "clear one"], "auc": [0.37, 0.30], "auc_ci_low": [0.19, 0.21],
                          "auc_ci_high": [0.51, 0.39], "n_patients": [40, 300], "problem": [True, True]})
    stage = GridStage(grid=grid, verdict=GridCanaryVerdict(table=table, band=(0.40, 0.60), nested_note=""))
    with caplog.at_level(logging.WARNING, logger="dlradiomics"):
        log_canary_verdict(stage)
    noisy, clear = (record.getMessage() for record in caplog.records)
    assert noisy.startswith("canary: outside [0.40, 0.60] but its 95% CI contains 0.5: consistent with chance on 40 "
                            "patients; rerun with more patients or repeats") and "anti-signal" not in noisy
    assert clear.startswith("canary: PROBLEM: AUC 0.300 (0.210-0.390) on permuted labels (clear one)")
    assert "anti-signal from how patients were split or grouped" in clear and "chance" not in clear


def test_a_clinical_reference_is_shown_when_given(grid):
    reference = ReferenceOperatingPoint("radiologist, BI-RADS >= 4", 0.936, 0.777, 70, model_specificity=0.70,
                                        mcnemar_p=0.0004)
    headline = build_headline(grid, patients=70, threshold_rule="r", reference=reference, n_boot=30)
    line = [text for label, text in headline.items() if label == "Clinical reference"][0]
    assert "sensitivity 0.936, specificity 0.777 (70 patients)" in line and "McNemar p = <0.001" in line


def test_a_comparison_only_row_is_never_the_chosen_model_nor_its_runner_up(grid):
    ranked = grid.completed.sort_values("inner_auc", ascending=False)
    best_key = configuration_label(ranked.iloc[0])
    results = grid.results.assign(comparison_only=[configuration_label(row) == best_key
                                                   for _, row in grid.results.iterrows()])
    marked = dataclasses.replace(grid, results=results)
    headline = build_headline(marked, patients=70, threshold_rule="r", n_boot=30)
    assert headline.model == configuration_label(ranked.iloc[1])
    assert runner_up_comparison(marked) is None  # the only other completed row is a baseline


def test_the_reference_comes_from_the_clinical_comparison_rows_of_the_chosen_model():
    table = pd.DataFrame([
        {"role": "radiologist alone", "configuration": "radiologist (score >= 4)", "patients": 60,
         "sensitivity": 0.95, "specificity": 0.40, "p_specificity_mcnemar_exact": None},
        {"role": "model alone", "configuration": "deep | US | single | logistic", "patients": 60,
         "sensitivity": 0.90, "specificity": 0.55, "p_specificity_mcnemar_exact": 0.21},
        {"role": "model + clinical variables", "configuration": "radiomic+clinical | US | single | logistic",
         "patients": 60, "sensitivity": 0.92, "specificity": 0.70, "p_specificity_mcnemar_exact": 0.003},
    ])
    reference = reference_from_comparison(table, "radiomic+clinical | US | single | logistic")
    assert reference == ReferenceOperatingPoint("radiologist (score >= 4)", 0.95, 0.40, 60, model_specificity=0.70,
                                                mcnemar_p=0.003)
    unmatched = reference_from_comparison(table, "dlr | US | stacking | svm")
    assert unmatched.model_specificity is None and unmatched.mcnemar_p is None
    assert reference_from_comparison(table.head(0), "x") is None

"""Coverage-aware model choice: a configuration that cannot score every patient is not chosen, and
"run the grid, keep the best" is estimated over one common set of patients."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import yaml
from evaluation_data import make_feature_tables

from dlradiomics.api import Study, load_bundle
from dlradiomics.demo.demo import DEMO_MANIFEST
from dlradiomics.evaluation import CONFIG_COLUMNS, GridResult, PatientHoldout, run_grid
from dlradiomics.evaluation.splits import TRAIN_ONLY
from dlradiomics.report.model_choice import results_with_eligibility
from dlradiomics.study.preflight import preflight_study
from dlradiomics.study.settings import StudySettings, StudySettingsError

NO_SELECTION = {"radiomic": None, "deep": None, "dlr": None}
PATIENTS = [f"P{i:02d}" for i in range(60)]


def _configuration(modalities: str, fusion: str) -> dict[str, str]:
    return {"source": "radiomic", "modalities": modalities, "fusion": fusion, "classifier": "logistic"}


def _hand_made_grid(inner_aucs: dict[str, list[float]], scored: dict[str, list[str]]) -> GridResult:
    """Three folds of 20 patients; each configuration scores the given patients with the given
    inner AUC per fold (probabilities are irrelevant to the choice)."""
    fold_of = {patient: index // 20 for index, patient in enumerate(PATIENTS)}
    fold_table = pd.DataFrame({"patient_id": PATIENTS, "repeat": 0, "fold": [fold_of[p] for p in PATIENTS]})
    oof_parts, rows = [], []
    for name, patients in scored.items():
        modalities, fusion = name.split(" ")
        key = _configuration(modalities, fusion)
        oof_parts.append(pd.DataFrame({
            "patient_id": patients, "repeat": 0, "fold": [fold_of[p] for p in patients],
            "y_true": [int(p[-1]) % 2 for p in patients], "prob": 0.5, "threshold": 0.5,
            "inner_auc": [inner_aucs[name][fold_of[p]] for p in patients], **key,
        }))
        rows.append({**key, "status": "ok", "note": "", "n_patients": len(patients),
                     "inner_auc": float(np.mean(inner_aucs[name])), "auc": 0.7})
    return GridResult(results=pd.DataFrame(rows), oof=pd.concat(oof_parts, ignore_index=True),
                      fold_table=fold_table)


@pytest.fixture()
def partial_winner() -> GridResult:
    complete_cases = PATIENTS[::3]                       # 20 patients have every modality
    us_patients = PATIENTS[:40] + PATIENTS[42::3]      # 46: every complete case among them
    return _hand_made_grid(
        inner_aucs={"US+MG early": [1.0, 1.0, 1.0], "US single": [0.9, 0.6, 0.9], "US+MG ensemble": [0.8, 0.8, 0.7]},
        scored={"US+MG early": complete_cases, "US single": us_patients, "US+MG ensemble": PATIENTS},
    )


def test_a_configuration_scoring_part_of_the_cohort_is_not_chosen(partial_winner):
    best = partial_winner.best
    assert (best["modalities"], best["fusion"]) == ("US+MG", "ensemble")
    eligibility = partial_winner.eligibility().set_index("fusion")
    assert eligibility.loc["early", "eligibility"] == "not eligible: scores 20 of 60 patients"
    assert eligibility.loc["single", "eligibility"] == "not eligible: scores 46 of 60 patients"
    assert bool(eligibility.loc["ensemble", "eligible"])


def test_the_switch_lets_a_partial_configuration_win(partial_winner):
    relaxed = dataclasses.replace(partial_winner, require_full_coverage=False)
    assert relaxed.best["fusion"] == "early"
    assert relaxed.eligibility()["eligible"].all()
    assert "coverage not required" in relaxed.eligibility().set_index("fusion").loc["early", "eligibility"]


def test_a_comparison_only_row_is_never_a_candidate_even_scoring_everyone(partial_winner):
    baseline = {**_configuration("US", "single"), "source": "cnn"}
    oof = partial_winner.oof[partial_winner.oof["fusion"] == "ensemble"].assign(source="cnn", modalities="US",
                                                                                fusion="single", inner_auc=1.0)
    results = pd.concat([partial_winner.results.assign(comparison_only=False),
                         pd.DataFrame([{**baseline, "status": "ok", "note": "", "n_patients": 60,
                                        "inner_auc": 1.0, "auc": 0.9, "comparison_only": True}])],
                        ignore_index=True)
    grid = dataclasses.replace(partial_winner, results=results, oof=pd.concat([partial_winner.oof, oof]))
    assert grid.best["fusion"] == "ensemble"
    assert "cnn" not in set(grid.eligibility()["source"])
    assert set(grid.nested_selection_predictions()["source"]) == {"radiomic"}
    table = results_with_eligibility(grid, [*CONFIG_COLUMNS, "status", "auc"]).set_index("source")
    assert table.loc["cnn", "eligibility"] == "comparison only (never chosen)"


def test_nested_selection_is_over_every_patient_when_coverage_is_required(partial_winner):
    chosen = partial_winner.nested_selection_predictions()
    assert sorted(chosen["patient_id"]) == PATIENTS
    assert set(chosen["fusion"]) == {"ensemble"}


def test_nested_selection_without_coverage_is_over_the_patients_every_configuration_scores(partial_winner):
    relaxed = dataclasses.replace(partial_winner, require_full_coverage=False)
    common = relaxed.nested_selection_patients()
    assert list(common) == sorted(PATIENTS[::3])
    chosen = relaxed.nested_selection_predictions()
    # Every fold is won by early fusion (inner AUC 1.0), scored on the same 20 patients whichever won.
    assert sorted(chosen["patient_id"]) == list(common)
    assert chosen["patient_id"].is_unique


def test_nested_selection_picks_per_fold_among_eligible_configurations():
    grid = _hand_made_grid(
        inner_aucs={"US single": [0.9, 0.6, 0.9], "US+MG ensemble": [0.8, 0.8, 0.7]},
        scored={"US single": PATIENTS, "US+MG ensemble": PATIENTS},
    )
    chosen = grid.nested_selection_predictions().set_index("patient_id")
    assert chosen.loc["P00", "fusion"] == "single" and chosen.loc["P25", "fusion"] == "ensemble"
    assert chosen.loc["P45", "fusion"] == "single" and len(chosen) == 60


def test_no_eligible_configuration_names_the_switch():
    grid = _hand_made_grid(inner_aucs={"US+MG early": [1.0, 1.0, 1.0]}, scored={"US+MG early": PATIENTS[::2]})
    assert not grid.has_choice
    with pytest.raises(ValueError, match="require_full_coverage: false"):
        _ = grid.best
    with pytest.raises(ValueError, match="scores every one of the 60 patients"):
        grid.nested_selection_predictions()


def _tables_with_a_strong_partial_modality() -> dict[str, pd.DataFrame]:
    """US weakly informative for every patient; MG almost decisive but missing for about 60% of patients."""
    tables = make_feature_tables(n_patients=60, modalities=("US", "MG"), signal=0.6, n_radiomic=4,
                                 missing_fraction=0.6, seed=11)
    radiomic = tables["radiomic"].copy()
    mg = radiomic["modality"] == "MG"
    radiomic.loc[mg, "original_firstorder_f0000"] += 4.0 * radiomic.loc[mg, "label"]
    return {"radiomic": radiomic}


def test_grid_on_a_multimodal_cohort_chooses_a_model_that_scores_every_patient():
    tables = _tables_with_a_strong_partial_modality()
    n_patients = tables["radiomic"]["patient_id"].nunique()
    grid = run_grid(tables, sources=("radiomic",), modality_sets=[("US",), ("MG",), ("US", "MG")],
                    fusions=("early", "ensemble"), classifiers=("logistic",), selections=NO_SELECTION,
                    inner_splits=2, n_boot=20, seed=1)
    relaxed = dataclasses.replace(grid, require_full_coverage=False)
    # Without the rule a partial model (early fusion or MG alone, on the patients having MG) wins.
    assert relaxed.best["n_patients"] < n_patients
    best = grid.best
    assert best["n_patients"] == n_patients
    assert set(grid.predictions_of(best)["patient_id"]) == set(tables["radiomic"]["patient_id"])
    chosen = grid.nested_selection_predictions()
    assert chosen["patient_id"].is_unique and len(chosen) == n_patients
    not_eligible = grid.eligibility().query("not eligible")
    assert set(not_eligible["modalities"] + " " + not_eligible["fusion"]) == {"MG single", "US+MG early"}


def test_holdout_training_patients_are_not_counted_as_unscored():
    tables = make_feature_tables(n_patients=50, modalities=("US",), seed=3)
    grid = run_grid(tables, sources=("radiomic",), fusions=("early",), classifiers=("logistic",),
                    selections=NO_SELECTION, outer=PatientHoldout(test_size=0.2, seed=0), inner_splits=2, n_boot=20)
    row = grid.completed.iloc[0]
    n_test = int((grid.fold_table["fold"] != TRAIN_ONLY).sum())
    assert row["n_patients"] == n_test == len(grid.study_patients) == 10
    assert row["note"] == ""
    assert grid.eligibility()["eligible"].all() and grid.best["fusion"] == "single"


def test_a_given_fold_table_is_restricted_to_the_patients_with_features():
    tables = make_feature_tables(n_patients=40, modalities=("US",), seed=3)
    patients = sorted(tables["radiomic"]["patient_id"].unique())
    fold_table = pd.DataFrame({"patient_id": patients + ["NOFEATURES"], "repeat": 0,
                               "fold": [i % 4 for i in range(len(patients))] + [0]})
    grid = run_grid(tables, sources=("radiomic",), fusions=("early",), classifiers=("logistic",),
                    selections=NO_SELECTION, outer=fold_table, inner_splits=2, n_boot=20)
    assert "NOFEATURES" not in set(grid.fold_table["patient_id"])
    assert grid.has_choice and list(grid.study_patients) == patients
    assert set(CONFIG_COLUMNS) <= set(grid.eligibility().columns)


@pytest.mark.slow
def test_a_multimodal_study_saves_a_model_that_scores_every_patient(tmp_path):
    """The demo cohort (40 patients, 10 without mammography): early fusion and MG alone score 30."""
    study = {
        "name": "coverage", "cohort": {"manifest": str(DEMO_MANIFEST), "modalities": ["US", "MG"]},
        "classifiers": ["logistic"], "feature_sources": ["radiomic"], "fusion": ["single", "early"],
        "cv": {"outer_folds": 3, "inner_folds": 2, "seed": 7}, "report": {"bootstrap": 20, "canary": False},
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = Study.from_yaml(tmp_path / "study.yaml").run(progress=False)
    assert result.best["n_patients"] == 40 and result.best["modalities"] == "US"
    results = pd.read_csv(result.run_dir / "tables" / "results_long.csv")
    words = results.set_index(["modalities", "fusion"])["eligibility"]
    assert words[("US+MG", "early")] == "not eligible: scores 30 of 40 patients"
    assert words[("US", "single")] == "eligible: scores every patient"
    report = (result.run_dir / "report.html").read_text()
    assert "Only configurations that score every one of the 40 patients could be chosen" in report
    assert load_bundle(result.bundle_path).metadata.modalities == ["US"]


def test_the_study_switch_is_a_typed_setting_of_the_choice_section():
    base = {"cohort": {"manifest": "m.csv"}}
    default = StudySettings.from_mapping(base)
    assert default.choice.require_full_coverage is True and default.deprecation_warnings == ()
    relaxed = StudySettings.from_mapping({**base, "choice": {"require_full_coverage": False}})
    assert relaxed.choice.require_full_coverage is False and relaxed.choice.by == "auc"
    assert relaxed.deprecation_warnings == ()
    with pytest.raises(StudySettingsError, match="choice.require_full_cover: unknown key"):
        StudySettings.from_mapping({**base, "choice": {"require_full_cover": False}})


def test_a_study_file_with_the_old_model_choice_section_still_reads_and_says_what_to_write():
    base = {"cohort": {"manifest": "m.csv"}}
    old = StudySettings.from_mapping({**base, "model_choice": {"require_full_coverage": False},
                                      "choice": {"by": "auc"}})
    assert old.choice.require_full_coverage is False and old.choice.by == "auc"
    (warning,) = old.deprecation_warnings
    assert "`model_choice:` section is now part of `choice:`" in warning
    assert "write `choice: {by: auc, require_full_coverage: false}` instead" in warning
    assert "model_choice" not in old.to_yaml_dict()  # the run folder records the new form
    assert old.to_yaml_dict()["choice"] == {"by": "auc", "require_full_coverage": False}
    with pytest.raises(StudySettingsError, match="give it once, under choice"):
        StudySettings.from_mapping({**base, "model_choice": {"require_full_coverage": False},
                                    "choice": {"require_full_coverage": True}})
    with pytest.raises(StudySettingsError, match="takes only require_full_coverage"):
        StudySettings.from_mapping({**base, "model_choice": {"require_full_cover": False}})


def test_the_old_section_warns_before_a_run_where_a_user_sees_it(tmp_path):
    study = {"cohort": {"manifest": str(DEMO_MANIFEST), "modalities": ["US"]}, "feature_sources": ["radiomic"],
             "model_choice": {"require_full_coverage": True}, "output": "out", "store": "store"}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    warnings = preflight_study(StudySettings.from_yaml(tmp_path / "study.yaml")).warnings
    assert [w for w in warnings if "model_choice" in w] == [
        "the study file's `model_choice:` section is now part of `choice:`; write "
        "`choice: {require_full_coverage: true}` instead (read as that this time)"]

"""The experiment grid on small generated multimodal feature tables."""

from __future__ import annotations

import numpy as np
import pytest
from evaluation_data import make_feature_tables
from sklearn.dummy import DummyClassifier

from dlradiomics.evaluation import (
    CONFIG_COLUMNS,
    default_modality_sets,
    grid_configurations,
    run_grid,
)
from dlradiomics.models import (
    DLRComposition,
    DLRFusion,
    EarlyFusion,
    ModelConfiguration,
    PCAStep,
    WeightedEnsembleFusion,
    build_estimator,
)

NO_SELECTION = {"radiomic": None, "deep": None, "dlr": None}


@pytest.fixture(scope="module")
def complete_grid():
    tables = make_feature_tables(n_patients=60, modalities=("US", "MG"), signal=1.2, seed=4)
    return run_grid(
        tables,
        sources=("radiomic", "dlr"),
        modality_sets=[("US",), ("US", "MG")],
        fusions=("ensemble",),
        classifiers=("logistic",),
        selections=NO_SELECTION,
        dlr=DLRComposition(deep_components=8, radiomic_components=8, deep_components_per_modality=8),
        inner_splits=2,
        n_boot=100,
    )


def test_modality_sets_are_singles_pairs_and_all():
    assert default_modality_sets(["US", "MG", "MRI"]) == [
        ("US",), ("MG",), ("MRI",), ("US", "MG"), ("US", "MRI"), ("MG", "MRI"), ("US", "MG", "MRI")
    ]
    assert default_modality_sets(["US", "MG"]) == [("US",), ("MG",), ("US", "MG")]


def test_single_block_configurations_collapse_and_say_so():
    to_run, skipped = grid_configurations(("radiomic", "dlr"), [("US",)], ("early", "stacking"), ("svm",))
    assert [(c.source, c.fusion) for c in to_run] == [("radiomic", "single"), ("dlr", "early"), ("dlr", "stacking")]
    assert {(c.source, c.fusion) for c, _ in skipped} == {("radiomic", "early"), ("radiomic", "stacking")}
    assert all("single" in reason for _, reason in skipped)


def test_results_have_one_row_per_configuration_with_cis(complete_grid):
    results = complete_grid.results
    completed = complete_grid.completed
    # radiomic US single, radiomic US+MG ensemble, dlr US ensemble, dlr US+MG ensemble.
    assert len(completed) == 4
    assert not results.duplicated(list(CONFIG_COLUMNS)).any()
    assert (completed["n_patients"] == 60).all()
    assert (completed["auc_ci_low"] <= completed["auc"]).all() and (completed["auc"] <= completed["auc_ci_high"]).all()
    assert (completed["auc"] > 0.7).all()
    skipped = results[results["status"] == "skipped"]
    assert skipped[["source", "modalities", "fusion"]].values.tolist() == [["radiomic", "US", "ensemble"]]


def test_every_configuration_sees_the_same_folds(complete_grid):
    folds = complete_grid.oof.groupby(list(CONFIG_COLUMNS)).apply(
        lambda rows: tuple(rows.sort_values("patient_id")["fold"]), include_groups=False
    )
    assert folds.nunique() == 1


def test_best_model_is_chosen_by_inner_auc_not_test_auc(complete_grid):
    best = complete_grid.best
    completed = complete_grid.completed
    assert best["inner_auc"] == completed["inner_auc"].max()
    assert "inner" in complete_grid.selection_rule


def test_nested_selection_takes_one_configuration_per_fold(complete_grid):
    chosen = complete_grid.nested_selection_predictions()
    per_fold = chosen.groupby(["repeat", "fold"])[list(CONFIG_COLUMNS)].nunique()
    assert (per_fold == 1).all().all()
    assert chosen["patient_id"].is_unique and len(chosen) == 60


def test_summary_tables(complete_grid):
    table = complete_grid.auc_table()
    assert list(table.columns) == ["logistic"]
    assert table.shape[0] == len(complete_grid.completed)
    assert table.iloc[0, 0].count("(") == 1
    best = complete_grid.best_per_setting()
    assert len(best) == len(complete_grid.completed)


def test_missing_modality_patients_and_absent_blocks_are_reported():
    tables = make_feature_tables(n_patients=60, modalities=("US", "MG"), missing_fraction=0.3, seed=2)
    tables["deep"] = tables["deep"][tables["deep"]["modality"] == "US"]
    grid = run_grid(
        tables,
        sources=("radiomic", "deep"),
        modality_sets=[("US", "MG")],
        fusions=("early",),
        classifiers=("logistic",),
        selections=NO_SELECTION,
        inner_splits=2,
        n_boot=50,
    )
    rows = grid.results.set_index("source")
    assert rows.loc["deep", "status"] == "skipped" and "MG.deep" in rows.loc["deep", "note"]
    assert rows.loc["radiomic", "status"] == "ok"
    lacking_mg = 60 - tables["radiomic"].query("modality == 'MG'")["patient_id"].nunique()
    assert rows.loc["radiomic", "n_patients"] == 60 - lacking_mg
    assert "could not be scored" in rows.loc["radiomic", "note"]
    assert np.isfinite(rows.loc["radiomic", "auc"])


def test_an_own_classifier_runs_in_the_grid_under_its_name():
    """A prior-only classifier predicts, for every test patient, the malignant share of its training rows."""
    tables = make_feature_tables(n_patients=40, modalities=("US",), seed=5)
    grid = run_grid(
        tables,
        sources=("radiomic",),
        fusions=("early",),
        classifiers=("logistic", "prior"),
        custom_classifiers={"prior": DummyClassifier(strategy="prior")},
        selections=NO_SELECTION,
        inner_splits=2,
        n_boot=20,
    )
    assert set(grid.completed["classifier"]) == {"logistic", "prior"}
    assert list(grid.auc_table().columns) == ["logistic", "prior"]
    oof = grid.predictions_of({"source": "radiomic", "modalities": "US", "fusion": "single", "classifier": "prior"})
    rows = tables["radiomic"].assign(patient_id=tables["radiomic"]["patient_id"].astype(str))
    fold_of = grid.fold_table.set_index("patient_id")["fold"]
    for fold, test in oof.groupby("fold"):
        training_rows = rows[rows["patient_id"].map(fold_of) != fold]
        np.testing.assert_allclose(test["prob"], training_rows["label"].mean())
    with pytest.raises(ValueError, match="unknown classifier"):
        run_grid(tables, classifiers=("hgb",))


def test_factory_composes_dlr_as_the_paper_and_reduces_deep_blocks_per_modality():
    dlr_us_ensemble = ModelConfiguration("dlr", ("US",), "ensemble", "logistic")
    paper = build_estimator(dlr_us_ensemble, dlr=DLRComposition(radiomic_components=20))
    assert isinstance(paper, DLRFusion) and paper.composition == "paper"
    assert (paper.deep_components, paper.radiomic_components, paper.deep_components_per_modality) == (51, 20, 32)
    # the earlier composition stays available, with its routing: one model per kind block for one modality
    whole = build_estimator(dlr_us_ensemble, dlr=DLRComposition(composition="whole_table"))
    assert isinstance(whole, WeightedEnsembleFusion) and whole.selection == (PCAStep(32),)
    whole_early = build_estimator(ModelConfiguration("dlr", ("US",), "early", "logistic"),
                                  dlr=DLRComposition(composition="whole_table"), dlr_components=40)
    assert whole_early.composition == "whole_table" and whole_early.n_components == 40
    deep_early = build_estimator(ModelConfiguration("deep", ("US", "MG"), "early", "logistic"))
    assert isinstance(deep_early, EarlyFusion)
    assert deep_early.block_selection == (PCAStep(32),) and deep_early.selection is None

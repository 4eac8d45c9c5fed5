"""The final model of a study: an own classifier chosen by the grid is refitted and its bundle records its class."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from evaluation_data import make_feature_tables

from dlradiomics.bundle import BundleError, load_bundle
from dlradiomics.evaluation import GridResult
from dlradiomics.models import build_model_table
from dlradiomics.schema import FAILURE_COLUMNS
from dlradiomics.study.features import FeatureTables
from dlradiomics.study.run_folder import RunFolder
from dlradiomics.study.settings import StudySettings
from dlradiomics.study.stages import fit_final_model

HGB = "sklearn.ensemble.HistGradientBoostingClassifier"


def test_an_own_classifier_chosen_by_the_grid_is_bundled_with_its_import_path(tmp_path):
    settings = StudySettings.from_mapping({
        "cohort": {"manifest": "m.csv"}, "feature_sources": ["radiomic"], "fusion": ["single"],
        "classifiers": ["logistic", {"name": "hgb", "estimator": HGB, "params": {"max_iter": 15}}],
        "cv": {"inner_folds": 2, "seed": 5},
    })
    tables = make_feature_tables(n_patients=30, modalities=("US",), seed=3)
    grid = GridResult(
        results=pd.DataFrame([
            {"source": "radiomic", "modalities": "US", "fusion": "single", "classifier": "hgb", "status": "ok",
             "inner_auc": 0.9},
            {"source": "radiomic", "modalities": "US", "fusion": "single", "classifier": "logistic", "status": "ok",
             "inner_auc": 0.8},
        ]),
        oof=pd.DataFrame(), fold_table=pd.DataFrame())
    features = FeatureTables(tables={"radiomic": tables["radiomic"]}, failures=pd.DataFrame(columns=FAILURE_COLUMNS),
                             cache_counts={})
    (tmp_path / "run").mkdir()
    final = fit_final_model(settings, grid, features, RunFolder(tmp_path / "run"), radiomics_params={},
                            gradcam_tensors={})

    metadata = json.loads((final.bundle_path / "bundle.json").read_text())
    recorded = metadata["settings"]["classifier"]
    assert {key: recorded[key] for key in ("name", "estimator", "params")} == {
        "name": "hgb", "estimator": HGB, "params": {"max_iter": 15}}
    assert metadata["settings"]["configuration"]["classifier"] == "hgb"
    assert final.n_patients == 30 and 0 < final.threshold < 1
    # The bundle loads only when the caller names the classes of the own classifier it records.
    assert any(name.endswith(".HistGradientBoostingClassifier") for name in recorded["classes"])
    with pytest.raises(BundleError, match="HistGradientBoostingClassifier"):
        load_bundle(final.bundle_path)
    bundle = load_bundle(final.bundle_path, trusted=recorded["classes"])
    table, _, _ = build_model_table(features.tables, ["US"], ["radiomic"], "image")
    assert bundle.predict_table(table)["probability"].between(0, 1).all()

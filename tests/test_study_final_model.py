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



def test_the_final_model_is_fitted_once_per_content_of_its_inputs(tmp_path):
    from roi_files import lesion_image, write_png

    from dlradiomics.io import FileHashCache
    from dlradiomics.store import FeatureStore

    settings = StudySettings.from_mapping({
        "cohort": {"manifest": "m.csv"}, "feature_sources": ["radiomic"], "fusion": ["single"],
        "classifiers": ["logistic"], "cv": {"inner_folds": 2, "seed": 5},
    })
    radiomic = make_feature_tables(n_patients=30, modalities=("US",), seed=3)["radiomic"]
    # Real files: the bundle's intensity profiles read the images, and the key holds their content hashes.
    for position, row in radiomic.iterrows():
        image, mask = lesion_image(seed=position)
        radiomic.loc[position, "image"] = str(write_png(tmp_path / f"{position}.png", image))
        radiomic.loc[position, "mask"] = str(write_png(tmp_path / f"{position}_mask.png", mask * 255))
    grid = GridResult(
        results=pd.DataFrame([{"source": "radiomic", "modalities": "US", "fusion": "single",
                               "classifier": "logistic", "status": "ok", "inner_auc": 0.8}]),
        oof=pd.DataFrame(), fold_table=pd.DataFrame())
    store = FeatureStore(tmp_path / "store")

    def fit(name, table, study=settings):
        features = FeatureTables(tables={"radiomic": table}, failures=pd.DataFrame(columns=FAILURE_COLUMNS),
                                 cache_counts={})
        (tmp_path / name).mkdir()
        return fit_final_model(study, grid, features, RunFolder(tmp_path / name), radiomics_params={},
                               gradcam_tensors={}, store=store, file_hashes=FileHashCache())

    def files(final):
        return {path.name: path.read_bytes() for path in sorted(final.bundle_path.iterdir())}

    first = fit("first", radiomic)
    second = fit("second", radiomic)
    assert not first.from_store and second.from_store
    assert files(second) == files(first)  # the very bundle the first run fitted
    assert (second.threshold, second.n_patients) == (first.threshold, first.n_patients)
    pd.testing.assert_frame_equal(second.terms, first.terms, check_dtype=False)
    load_bundle(second.bundle_path)  # whole, and its files pass the loader's checks

    # One feature value changed: fitted again, and the bundle records the new training range.
    changed = radiomic.copy()
    changed.loc[0, "original_firstorder_f0000"] = changed["original_firstorder_f0000"].max() + 100.0
    third = fit("third", changed)
    assert not third.from_store
    ranges = [json.loads(files(final)["bundle.json"])["feature_ranges"] for final in (first, third)]
    assert ranges[0] != ranges[1]
    # A bundle setting changed (the threshold rule): fitted again.
    at_sensitivity = settings.model_copy(update={"threshold": settings.threshold.model_copy(
        update={"rule": "sensitivity", "value": 0.9})})
    assert not fit("fourth", radiomic, at_sensitivity).from_store
    # An image rewritten (the intensity profiles read it): fitted again.
    image, _ = lesion_image(seed=99)
    write_png(radiomic.loc[0, "image"], image // 2)
    assert not fit("fifth", radiomic).from_store
    assert fit("sixth", radiomic).from_store
    # The stored entry damaged: fitted again, never a half bundle.
    for path in (tmp_path / "store" / "final_model").rglob("*.parquet"):
        frame = pd.read_parquet(path)
        if "content" in frame:
            frame["content"] = [b"broken" if name == "model.skops" else content
                                for name, content in zip(frame["name"], frame["content"])]
            frame.to_parquet(path, index=False)
    seventh = fit("seventh", radiomic)
    assert not seventh.from_store
    load_bundle(seventh.bundle_path)

def test_the_final_threshold_comes_from_plain_inner_fold_fits(tmp_path):
    # The inner-fold models behind the frozen threshold share fits as the grid's do; the threshold
    # must be the one plain scikit-learn fits of the same estimator on the same folds give.
    import numpy as np
    from sklearn.base import clone

    from dlradiomics.evaluation import choose_threshold
    from dlradiomics.models import ModelConfiguration, PatientGroupKFold, aggregate_by_patient
    from dlradiomics.study.features import model_table_for
    from dlradiomics.study.stages import estimator_for

    settings = StudySettings.from_mapping({
        "cohort": {"manifest": "m.csv"}, "feature_sources": ["dlr"], "fusion": ["ensemble"],
        "classifiers": ["logistic"], "cv": {"inner_folds": 3, "seed": 2}, "deep": {"pca_components": 4},
        "dlr": {"deep_components": 3, "radiomic_components": 3},
    })
    tables = make_feature_tables(n_patients=36, modalities=("US",), seed=8, missing_fraction=0.1)
    grid = GridResult(
        results=pd.DataFrame([{"source": "dlr", "modalities": "US", "fusion": "ensemble", "classifier": "logistic",
                               "status": "ok", "inner_auc": 0.9}]),
        oof=pd.DataFrame(), fold_table=pd.DataFrame())
    features = FeatureTables(tables=tables, failures=pd.DataFrame(columns=FAILURE_COLUMNS), cache_counts={})
    (tmp_path / "run").mkdir()
    final = fit_final_model(settings, grid, features, RunFolder(tmp_path / "run"), radiomics_params={},
                            gradcam_tensors={})

    configuration = ModelConfiguration("dlr", ("US",), "ensemble", "logistic")
    X, y, groups = model_table_for(tables, ["US"], list(configuration.kinds))
    estimator = estimator_for(settings, configuration)
    probability = np.full(len(X), np.nan)
    for train, test in PatientGroupKFold(3, random_state=2).split(X, y, groups.to_numpy()):
        probability[test] = clone(estimator).fit(X.iloc[train], y.iloc[train]).predict_proba(X.iloc[test])[:, 1]
    patient_probability = aggregate_by_patient(probability, groups.to_numpy()).dropna()
    labels = y.groupby(level=0).first().reindex(patient_probability.index)
    assert final.threshold == choose_threshold(labels.to_numpy(), patient_probability.to_numpy(),
                                               settings.threshold.as_rule())


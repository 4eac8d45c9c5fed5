"""CNN baselines in a study: trained inside the grid's outer folds, reported beside it, never chosen."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from dlradiomics.api import Study
from dlradiomics.study.preflight import PreflightError
from dlradiomics.study.settings import StudySettings, StudySettingsError
from demo_rows import demo_us_rows
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")
N_PER_CLASS = 8


def _study_folder(folder, **extra):
    demo_us_rows(N_PER_CLASS)[0].to_csv(folder / "manifest.csv", index=False)
    study = {
        "name": "baselines",
        "cohort": {"manifest": "manifest.csv", "modalities": ["US"]},
        "classifiers": ["logistic"],
        "feature_sources": ["radiomic"],
        "fusion": ["single"],
        "cv": {"outer_folds": 3, "inner_folds": 2, "seed": 3},
        "report": {"bootstrap": 20, "gradcam_examples": 0, "canary": False},
        **extra,
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    return folder / "study.yaml"


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    path = _study_folder(tmp_path_factory.mktemp("study"), baselines=["efficientnet_lite0"],
                         baseline_training={"image_size": 64, "epochs": 2, "batch_size": 8})
    return Study.from_yaml(path).run(progress=False)


@pytest.mark.slow  # a whole study with a CNN trained in 3 outer x (1 + 2 inner) folds
def test_baseline_rows_join_the_results_on_the_same_folds_and_patients(baseline_run):
    results = baseline_run.results
    cnn = results[results["source"] == "cnn"]
    assert cnn[["modalities", "fusion", "classifier", "status"]].values.tolist() == [
        ["US", "single", "efficientnet_lite0", "ok"]]
    assert bool(cnn["comparison_only"].iloc[0]) and 0 <= cnn["auc"].iloc[0] <= 1
    assert cnn["inner_auc"].notna().all(), "the threshold comes from inner out-of-fold predictions by default"
    oof = pd.read_csv(baseline_run.run_dir / "oof_predictions.csv")
    by_source = {source: rows.sort_values("patient_id") for source, rows in oof.groupby("source")}
    assert by_source["cnn"]["patient_id"].tolist() == by_source["radiomic"]["patient_id"].tolist()
    assert by_source["cnn"]["fold"].tolist() == by_source["radiomic"]["fold"].tolist()


@pytest.mark.slow
def test_a_baseline_is_reported_but_never_the_chosen_model(baseline_run):
    assert baseline_run.best["source"] == "radiomic"
    tables = baseline_run.report_path.parent / "tables"
    assert "efficientnet_lite0" in pd.read_csv(tables / "summary_auc.csv").columns
    assert "cnn" in set(pd.read_csv(tables / "results_long.csv")["source"])


def test_unknown_baseline_is_refused_by_name(tmp_path):
    with pytest.raises(StudySettingsError, match="alexnet"):
        StudySettings.from_yaml(_study_folder(tmp_path, baselines=["alexnet"]))


def test_missing_baseline_weights_stop_the_study_before_any_work(tmp_path):
    path = _study_folder(tmp_path, baselines=["resnet50"], deep={"weights_dir": "weights"})
    settings = StudySettings.from_yaml(path)
    assert settings.deep.weights_dir == tmp_path / "weights"
    with pytest.raises(PreflightError, match="dlradiomics weights download resnet50"):
        Study.from_yaml(path).run(progress=False)
    assert not (tmp_path / "output" / "runs").exists() or not any((tmp_path / "output" / "runs").iterdir())

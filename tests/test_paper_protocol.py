"""The paper's protocol preset: it does the leaky steps it says it does, and so inflates the AUC on noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from evaluation_data import make_feature_tables
from sklearn.metrics import roc_auc_score, roc_curve

from dlradiomics.api import Study
from dlradiomics.demo.demo import DEMO_MANIFEST
from dlradiomics.evaluation import CONFIG_COLUMNS, PatientHoldout, run_grid
from dlradiomics.evaluation.paper_protocol import (
    PaperProtocolResult,
    compare_protocols,
    run_paper_protocol,
    set_ensemble_weights_on_test,
)
from dlradiomics.evaluation.splits import TRAIN_ONLY
from dlradiomics.models import WeightedEnsembleFusion, build_model_table
from dlradiomics.study.settings import StudySettings, StudySettingsError


@pytest.fixture(scope="module")
def noise_tables() -> dict[str, pd.DataFrame]:
    """60 patients, 150 radiomic features per modality, none related to the label."""
    return make_feature_tables(n_patients=60, modalities=("US", "MG"), signal=0.0, n_radiomic=150, n_deep=4, seed=3)


@pytest.fixture(scope="module")
def paper_on_noise(noise_tables) -> PaperProtocolResult:
    return run_paper_protocol(noise_tables, sources=["radiomic"], modality_sets=[["US"], ["US", "MG"]],
                              fusions=["ensemble"], classifiers=["logistic"], n_boot=100, seed=0)


def test_on_noise_the_paper_protocol_reports_a_high_auc_and_the_same_split_done_honestly_does_not(
        noise_tables, paper_on_noise):
    honest = run_grid(noise_tables, sources=["radiomic"], modality_sets=[["US"], ["US", "MG"]], fusions=["ensemble"],
                      classifiers=["logistic"], outer=PatientHoldout(test_size=0.2, seed=0), n_boot=100)
    assert paper_on_noise.reported["auc"] > 0.8
    assert honest.completed["auc"].max() < 0.75
    # the same test patients: the split is the paper's, only where things are fitted differs
    assert set(paper_on_noise.predictions["patient_id"]) == set(honest.oof["patient_id"])


def test_one_stratified_patient_split_and_the_threshold_set_on_the_test_patients(noise_tables, paper_on_noise):
    split = paper_on_noise.split
    test = split.loc[split["fold"] != TRAIN_ONLY, "patient_id"]
    assert len(test) == 12 and split["patient_id"].is_unique
    labels = noise_tables["radiomic"].groupby("patient_id")["label"].max()
    assert labels[test].mean() == pytest.approx(labels.mean(), abs=0.05)
    for _, rows in paper_on_noise.predictions.groupby(list(CONFIG_COLUMNS)):
        assert set(rows["patient_id"]) == set(test)
        fpr, tpr, thresholds = roc_curve(rows["y_true"], rows["prob"])
        youden = thresholds[np.argmax(tpr - fpr)]
        assert rows["threshold"].iloc[0] == pytest.approx(min(youden, 1.0))
    reported = paper_on_noise.reported
    assert reported["auc"] == paper_on_noise.completed["auc"].max()
    best = paper_on_noise.reported_predictions()
    assert roc_auc_score(best["y_true"], best["prob"]) == pytest.approx(reported["auc"])


def test_ensemble_weights_are_the_softmax_of_each_blocks_test_accuracy(noise_tables):
    X, y, groups = build_model_table(dict(noise_tables), ["US", "MG"], ["radiomic"], "patient")
    model = WeightedEnsembleFusion(classifier="logistic", selection=None, inner_cv=3).fit(X[:40], y[:40])
    set_ensemble_weights_on_test(model, X[40:], y[40:].to_numpy())
    probabilities = model.block_probabilities(X[40:])
    accuracy = {block: np.mean((probabilities[block] >= 0.5).astype(int).to_numpy() == y[40:].to_numpy())
                for block in probabilities.columns}
    total = sum(np.exp(value) for value in accuracy.values())
    for block, value in accuracy.items():
        assert model.weights_[block] == pytest.approx(np.exp(value) / total)


def test_permuted_labels_are_said_and_used(noise_tables):
    permuted = run_paper_protocol(noise_tables, sources=["radiomic"], modality_sets=[["US"]], classifiers=["logistic"],
                                  n_boot=50, permute_labels=True, seed=1)
    assert permuted.permuted
    original = noise_tables["radiomic"].groupby("patient_id")["label"].max()
    scored = permuted.predictions.set_index("patient_id")["y_true"]
    assert (scored != original.reindex(scored.index)).any()


def test_the_difference_is_a_paired_comparison_on_the_shared_patients(paper_on_noise):
    reported = paper_on_noise.reported_predictions()
    rng = np.random.default_rng(0)
    everyone = paper_on_noise.split["patient_id"].astype(str)
    truth = reported.set_index("patient_id")["y_true"]
    nested = pd.DataFrame({"patient_id": everyone, "repeat": 0, "prob": rng.random(len(everyone)),
                           "y_true": truth.reindex(everyone).fillna(0).astype(int).to_numpy()})
    comparison = compare_protocols(paper_on_noise, nested, n_boot=200)
    shared = reported.merge(nested, on="patient_id", suffixes=("", "_nested"))
    assert comparison["n_shared"] == len(reported) == 12
    assert comparison["paper_auc"] == pytest.approx(roc_auc_score(shared["y_true"], shared["prob"]))
    assert comparison["nested_auc_shared"] == pytest.approx(roc_auc_score(shared["y_true"], shared["prob_nested"]))
    assert comparison["difference"] == pytest.approx(comparison["paper_auc"] - comparison["nested_auc_shared"])
    assert comparison["ci_low"] <= comparison["difference"] <= comparison["ci_high"]
    assert "12 test patients" in comparison["what"]


def test_protocols_setting_keeps_the_nested_protocol():
    base = {"cohort": {"manifest": "m.csv"}}
    assert StudySettings.from_mapping(base).protocols == ["nested"]
    assert StudySettings.from_mapping({**base, "protocols": ["nested", "paper"]}).protocols == ["nested", "paper"]
    with pytest.raises(StudySettingsError, match="must include 'nested'"):
        StudySettings.from_mapping({**base, "protocols": ["paper"]})


@pytest.mark.slow
def test_a_study_runs_both_protocols_and_saves_the_nested_choice(tmp_path):
    study = {
        "name": "protocols", "cohort": {"manifest": str(DEMO_MANIFEST), "modalities": ["US"]},
        "classifiers": ["logistic", "knn"], "feature_sources": ["radiomic"], "fusion": ["single"],
        "cv": {"outer_folds": 3, "inner_folds": 2, "seed": 7}, "report": {"bootstrap": 50, "canary": True},
        "protocols": ["nested", "paper"],
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = Study.from_yaml(tmp_path / "study.yaml").run(progress=False)
    results = pd.read_csv(result.run_dir / "tables" / "results_long.csv")
    ok = results[results["status"] == "ok"]
    assert result.best["classifier"] == ok.loc[ok["inner_auc"].idxmax(), "classifier"]   # the nested choice
    protocols = pd.read_csv(result.run_dir / "tables" / "protocols.csv")
    assert list(protocols["labels"]) == ["real"] * 3 + ["permuted"] * 3
    assert list(protocols["protocol"][:3]) == ["nested (honest)", "paper (leaky)", "difference (paper - nested)"]
    real = protocols.set_index(["labels", "protocol"])
    assert real.loc[("real", "difference (paper - nested)"), "patients"] == 8     # 20% of 40 patients
    paper_results = pd.read_csv(result.run_dir / "tables" / "paper_protocol_results.csv")
    assert real.loc[("real", "paper (leaky)"), "AUC"] == pytest.approx(paper_results["auc"].max())
    report = (result.run_dir / "report.html").read_text()
    assert "Paper protocol (leaky, for comparison)" in report and "never the saved model" in report

"""`dlradiomics predict` with a deep-feature model: probabilities, classes and Grad-CAM overlays."""

from __future__ import annotations

import pandas as pd
import yaml
from PIL import Image
from typer.testing import CliRunner

from dlradiomics.bundle import load_bundle
from dlradiomics.cli import app
from dlradiomics.demo.demo import DEMO_MANIFEST
from dlradiomics.study.runner import Study


def _absolute(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("image", "mask"):
        frame[column] = [str(DEMO_MANIFEST.parent / path) for path in frame[column]]
    return frame


def test_deep_model_predicts_with_gradcam_overlays(tmp_path):
    manifest = pd.read_csv(DEMO_MANIFEST)
    us = manifest[manifest["modality"] == "US"]
    training = _absolute(us.groupby("label").head(8))
    new = _absolute(us[~us["patient_id"].isin(training["patient_id"])].groupby("label").head(1))
    training.to_csv(tmp_path / "train.csv", index=False)
    new.drop(columns="label").to_csv(tmp_path / "new.csv", index=False)
    study = {"name": "deep", "cohort": {"manifest": "train.csv", "modalities": ["US"]}, "deep": {"pca_components": 3},
             "classifiers": ["logistic"], "feature_sources": ["deep"], "fusion": ["single"],
             "cv": {"outer_folds": 2, "inner_folds": 2}, "report": {"bootstrap": 10, "gradcam_examples": 1,
                                                                     "canary": False}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = Study.from_yaml(tmp_path / "study.yaml").run(progress=False)
    assert load_bundle(result.bundle_path).tensors["US.weight"].shape[0] == 2

    outcome = CliRunner().invoke(app, ["predict", str(result.bundle_path), str(tmp_path / "new.csv"),
                                       "--out", str(tmp_path / "out")])
    assert outcome.exit_code == 0, outcome.output
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv", keep_default_na=False)
    assert sorted(predictions["patient_id"]) == sorted(new["patient_id"])
    assert predictions["probability"].astype(float).between(0, 1).all()
    assert "label" not in predictions  # new patients came without labels
    overlays = pd.read_csv(tmp_path / "out" / "gradcam.csv")
    assert sorted(overlays["roi_id"].str.split("/").str[0]) == sorted(new["patient_id"])
    for path in overlays["path"]:
        with Image.open(path) as image:
            assert image.mode == "RGB" and min(image.size) > 32


def test_a_doctored_bundle_is_refused_by_the_command(tmp_path):
    import pickle

    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "bundle.json").write_text('{"format_version": 1, "versions": {}}')
    (folder / "model.skops").write_bytes(pickle.dumps({"not": "a model"}))
    outcome = CliRunner().invoke(app, ["predict", str(folder), str(tmp_path / "new.csv")])
    assert outcome.exit_code == 2
    assert "pickle" in outcome.output

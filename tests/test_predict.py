"""`predict`: labels play no part, images unlike the training images are flagged, and the command
predicts a deep model's patients with Grad-CAM overlays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from dlradiomics.api import predict_manifest
from dlradiomics.bundle import MODEL_FILE, load_bundle, save_bundle
from dlradiomics.cli import app
from dlradiomics.demo.demo import DEMO_MANIFEST
from dlradiomics.io import load_roi
from dlradiomics.models import build_model_table, make_pipeline
from dlradiomics.study.features import compute_feature_tables
from dlradiomics.study.intensity import training_intensity_profiles
from dlradiomics.study.study import Study

from skops_craft import reseal
from synthetic_rois import synthetic_cohort_table

N_TRAINING_ROIS = 16  # 8 patients, two images each


@pytest.fixture(scope="module")
def radiomic_bundle(tmp_path_factory):
    """A radiomic US model fitted on generated 8-bit PNGs, with its intensity profile; new patients' files."""
    folder = tmp_path_factory.mktemp("predict")
    table = synthetic_cohort_table(folder / "images", N_TRAINING_ROIS + 6)
    training, new = table.iloc[:N_TRAINING_ROIS], table.iloc[N_TRAINING_ROIS:]
    store = folder / "store"
    features = compute_feature_tables(training, ["radiomic"], store_dir=store, progress=False)
    X, y, _ = build_model_table(features.tables, ["US"], ["radiomic"], level="image")
    model = make_pipeline("logistic", selection=None).fit(X, y)
    bundle_dir = save_bundle(folder / "bundle", model, training_table=X, threshold=0.5, modalities=["US"],
                             feature_kinds=["radiomic"], level="image",
                             intensity_profiles=training_intensity_profiles(features.tables["radiomic"], ["US"]))
    return load_bundle(bundle_dir), new.reset_index(drop=True), store, folder


def _predict(bundle, rows: pd.DataFrame, path, store, **options) -> pd.DataFrame:
    if path.suffix == ".csv":
        rows.to_csv(path, index=False)
    else:
        path.write_text(yaml.safe_dump({"rows": rows.astype(object).where(rows.notna(), None).to_dict("records")}))
    return predict_manifest(bundle, path, store_dir=store, **options).set_index("patient_id")


# --- labels play no part ------------------------------------------------------------------------------

LABEL_VARIANTS = {
    "csv-absent": (".csv", None),
    "csv-blank": (".csv", ""),
    "csv-unknown": (".csv", ["unknown", "?", "benign?"]),
    "csv-true-labels": (".csv", ["benign", "malignant", "benign"]),
    "yaml-absent": (".yaml", None),
    "yaml-null": (".yaml", "null"),
    "yaml-unknown": (".yaml", ["pending", "7", "maybe"]),
}


def _with_labels(rows: pd.DataFrame, variant) -> pd.DataFrame:
    rows = rows[["patient_id", "modality", "image", "mask"]].copy()
    if variant is None:
        return rows
    if variant == "null":
        rows["label"] = None
    elif isinstance(variant, str):
        rows["label"] = variant
    else:
        patients = sorted(rows["patient_id"].unique())
        rows["label"] = rows["patient_id"].map(dict(zip(patients, variant)))
    return rows


@pytest.fixture(scope="module")
def reference_predictions(radiomic_bundle):
    bundle, new, store, folder = radiomic_bundle
    return _predict(bundle, _with_labels(new, None), folder / "reference.csv", store)


@pytest.mark.parametrize("variant", list(LABEL_VARIANTS))
def test_labels_are_ignored_whatever_they_hold(radiomic_bundle, reference_predictions, tmp_path, variant):
    bundle, new, store, _ = radiomic_bundle
    suffix, labels = LABEL_VARIANTS[variant]
    predictions = _predict(bundle, _with_labels(new, labels), tmp_path / f"new{suffix}", store)
    assert (predictions["reason"] == "").all(), predictions["reason"].tolist()
    assert predictions["probability"].notna().all()
    assert "label" not in predictions.columns
    pd.testing.assert_frame_equal(predictions, reference_predictions)


def test_reference_predictions_match_the_model(radiomic_bundle, reference_predictions):
    bundle, new, store, _ = radiomic_bundle
    features = compute_feature_tables(new, ["radiomic"], store_dir=store, progress=False)
    X, _, _ = build_model_table(features.tables, ["US"], ["radiomic"], level="image")
    expected = pd.Series(bundle.model.predict_proba(X[bundle.feature_columns])[:, 1], index=X.index).groupby(level=0).mean()
    np.testing.assert_allclose(reference_predictions.loc[expected.index, "probability"], expected, rtol=1e-12)
    # 8-bit images like the training ones: no image is flagged (a feature of a 16-image model may be)
    assert not reference_predictions["warnings"].str.contains("stored as|beyond the training range").any()


# --- 8-bit and 16-bit copies of the same images --------------------------------------------------------

def test_16_bit_copies_get_the_same_probability_or_a_stated_warning(radiomic_bundle, reference_predictions, tmp_path):
    bundle, new, store, _ = radiomic_bundle
    sixteen = new.copy()
    for index, row in new.iterrows():
        pixels = np.asarray(Image.open(row["image"]), dtype=np.uint16) * 257  # full 16-bit scale, same picture
        path = tmp_path / f"{index}_16bit.png"
        Image.fromarray(pixels).save(path)
        assert Image.open(path).mode.startswith("I;16")
        sixteen.loc[index, "image"] = str(path)
    predictions = _predict(bundle, _with_labels(sixteen, None), tmp_path / "sixteen.csv", store)
    assert (predictions["reason"] == "").all()

    read_alike = all(np.array_equal(load_roi(a, m).image, load_roi(b, m).image)
                     for a, b, m in zip(new["image"], sixteen["image"], new["mask"]))
    for patient, row in predictions.iterrows():
        assert "16-bit" in row["warnings"], row["warnings"]  # stored unlike the training images, always said
        same = np.isclose(row["probability"], reference_predictions.loc[patient, "probability"], rtol=1e-9)
        if not read_alike:  # io reads the 16-bit copy at another scale: the reason must be stated
            assert "beyond the training range" in row["warnings"]
        if not same:  # a different answer never comes silently
            assert "beyond the training range" in row["warnings"] or "outside the training range" in row["warnings"]
    if read_alike:  # a read-time intensity convention makes both copies the same input
        np.testing.assert_allclose(predictions["probability"], reference_predictions["probability"], rtol=1e-9)


def test_8_bit_values_saved_as_16_bit_without_scaling_are_flagged(radiomic_bundle, reference_predictions, tmp_path):
    # io reads a 16-bit file on the 8-bit scale (value * 255 / 65535): unscaled 8-bit values come out
    # nearly black, every feature moves, and the probability with them. It must never pass unflagged.
    bundle, new, store, _ = radiomic_bundle
    unscaled = new.copy()
    for index, row in new.iterrows():
        path = tmp_path / f"{index}_unscaled.png"
        Image.fromarray(np.asarray(Image.open(row["image"]), dtype=np.uint16)).save(path)
        unscaled.loc[index, "image"] = str(path)
    with pytest.warns(UserWarning, match="probably 8-bit data saved without scaling"):
        predictions = _predict(bundle, _with_labels(unscaled, None), tmp_path / "unscaled.csv", store)
    assert (predictions["reason"] == "").all()
    for patient, row in predictions.iterrows():
        assert "under half of the darkest training image" in row["warnings"], row["warnings"]
        assert "outside the training range" in row["warnings"]


def test_the_command_writes_warnings_and_no_labels(radiomic_bundle, tmp_path):
    bundle, new, _, _ = radiomic_bundle
    rows = _with_labels(new, "")
    rows.loc[rows.index[0], "image"] = str(tmp_path / "bright.png")
    pixels = np.asarray(Image.open(new.loc[0, "image"]), dtype=np.uint16) * 257
    Image.fromarray(pixels).save(tmp_path / "bright.png")
    rows.to_csv(tmp_path / "new.csv", index=False)
    outcome = CliRunner().invoke(app, ["predict", str(bundle.path), str(tmp_path / "new.csv"), "--out",
                                       str(tmp_path / "out"), "--no-gradcam"])
    assert outcome.exit_code == 0, outcome.output
    assert "3 patients predicted" in outcome.output
    written = pd.read_csv(tmp_path / "out" / "predictions.csv", keep_default_na=False).set_index("patient_id")
    assert list(written.columns) == ["probability", "predicted_class", "modalities", "warnings", "reason"]
    flagged = rows.loc[0, "patient_id"]
    assert "bright: stored as uint16 (16-bit), unlike the training images" in written.loc[flagged, "warnings"]
    assert not written.drop(index=flagged)["warnings"].str.contains("stored as").any()


# --- the command with a deep model, Grad-CAM, and a doctored bundle ------------------------------------

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
    bundle = load_bundle(result.bundle_path)
    assert bundle.tensors["US.weight"].shape[0] == 2
    assert bundle.intensity_profiles["US"].n_images == len(training)

    outcome = CliRunner().invoke(app, ["predict", str(result.bundle_path), str(tmp_path / "new.csv"),
                                       "--out", str(tmp_path / "out")])
    assert outcome.exit_code == 0, outcome.output
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv", keep_default_na=False)
    assert sorted(predictions["patient_id"]) == sorted(new["patient_id"])
    assert predictions["probability"].astype(float).between(0, 1).all()
    assert "label" not in predictions
    overlays = pd.read_csv(tmp_path / "out" / "gradcam.csv")
    assert sorted(overlays["roi_id"].str.split("/").str[0]) == sorted(new["patient_id"])
    for path in overlays["path"]:
        with Image.open(path) as image:
            assert image.mode == "RGB" and min(image.size) > 32


def test_a_doctored_bundle_is_refused_by_the_command(radiomic_bundle, tmp_path):
    import pickle
    import shutil

    bundle, _, _, _ = radiomic_bundle
    folder = tmp_path / "bundle"
    shutil.copytree(bundle.path, folder)
    (folder / MODEL_FILE).write_bytes(pickle.dumps({"not": "a model"}))
    outcome = CliRunner().invoke(app, ["predict", str(folder), str(tmp_path / "new.csv")])
    assert outcome.exit_code == 2 and "model.skops: refused: its contents changed" in outcome.output
    reseal(folder)
    outcome = CliRunner().invoke(app, ["predict", str(folder), str(tmp_path / "new.csv")])
    assert outcome.exit_code == 2 and "pickle" in outcome.output

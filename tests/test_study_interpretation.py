"""The case gallery: distinct patients per outcome, the most confident calls, Grad-CAM only for a model reading deep features."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from dlradiomics.cohort import read_manifest
from dlradiomics.demo.demo import DEMO_MANIFEST
from dlradiomics.models import ModelConfiguration
from dlradiomics.study.interpretation import case_gallery, pick_cases


def _predictions() -> pd.DataFrame:
    # patient, truth, probability; threshold 0.5 (two repeats: only the first is shown)
    rows = [("a", 1, 0.95), ("b", 1, 0.70), ("c", 1, 0.20), ("d", 1, 0.45), ("e", 0, 0.05), ("f", 0, 0.30),
            ("g", 0, 0.90), ("h", 0, 0.60)]
    frame = pd.DataFrame(rows, columns=["patient_id", "y_true", "prob"]).assign(threshold=0.5, repeat=0, fold=0)
    return pd.concat([frame, frame.assign(repeat=1, prob=1 - frame["prob"])], ignore_index=True)


def test_cases_are_the_most_confident_calls_of_each_outcome_from_distinct_patients():
    cases = pick_cases(_predictions(), per_outcome=1)
    assert list(zip(cases["outcome"], cases["patient_id"])) == [("TP", "a"), ("FN", "c"), ("TN", "e"), ("FP", "g")]
    two = pick_cases(_predictions(), per_outcome=2)
    assert two["patient_id"].is_unique and len(two) == 8


def _us_rows(count: int = 4) -> pd.DataFrame:
    table = read_manifest(DEMO_MANIFEST).table
    return table[table["modality"] == "US"].groupby("label").head(count // 2).reset_index(drop=True)


def _gallery_predictions(rows: pd.DataFrame) -> pd.DataFrame:
    probability = np.where(rows["label"] == 1, 0.8, 0.2)
    probability[0] = 0.9  # one benign patient called malignant: a false positive
    return pd.DataFrame({"patient_id": rows["patient_id"], "y_true": rows["label"], "prob": probability,
                         "threshold": 0.5, "repeat": 0, "fold": 0})


def test_a_radiomic_models_gallery_shows_outlined_rois_and_says_why_there_is_no_grad_cam(tmp_path):
    rows = _us_rows()
    gallery, note = case_gallery(_gallery_predictions(rows), rows, ModelConfiguration("radiomic", ("US",), "single",
                                                                                      "logistic"), 1, tmp_path)
    assert set(gallery["outcome"]) == {"TP", "TN", "FP"} and "No FN case" in note
    assert "so no Grad-CAM is shown" in note
    for path in gallery["path"]:
        with Image.open(path) as image:
            image.verify()
    assert not gallery["caption"].str.contains("Grad-CAM").any()


def test_a_deep_models_gallery_shows_grad_cam_captioned_with_the_model_it_explains(tmp_path):
    from dlradiomics.study.explain import fit_gradcam_heads

    rows = _us_rows()
    rng = np.random.default_rng(0)
    embeddings = pd.DataFrame(rng.normal(size=(len(rows), 1280)), columns=[f"deep_{i:04d}" for i in range(1280)])
    tensors = fit_gradcam_heads(pd.concat([rows[["modality", "label"]], embeddings], axis=1), ["US"], epochs=5)
    configuration = ModelConfiguration("deep", ("US",), "single", "logistic")
    gallery, note = case_gallery(_gallery_predictions(rows), rows, configuration, 1, tmp_path,
                                 gradcam={"tensors": tensors, "backbone": "efficientnet_lite0", "weights": "imagenet"})
    assert gallery["caption"].str.contains("Grad-CAM mass in lesion").all()
    assert "nan%" not in " ".join(gallery["caption"])
    assert f"Grad-CAM explains the deep part of the chosen model ({configuration.label})" in note

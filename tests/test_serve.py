"""The case viewer's server (`dlradiomics serve`) without a browser: numbers, bad uploads, profile, safety."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from starlette.testclient import TestClient
from typer.testing import CliRunner

from dlradiomics.bundle import load_bundle
from dlradiomics.cli import app as cli
from dlradiomics.cohort import Cohort, read_manifest
from dlradiomics.serve import create_app
from dlradiomics.serve.app import STATIC_DIR
from dlradiomics.serve.uploads import safe_file_name
from dlradiomics.study.features import compute_feature_tables

from serve_fixtures import viewer_bundle, write_manifest  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def client(viewer_bundle):  # noqa: F811
    return TestClient(create_app(load_bundle(viewer_bundle.path)))


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(client, **files):
    return client.post("/api/predict", files={name.replace("_", "."): value for name, value in files.items()})


def test_the_page_and_the_predict_command_give_identical_numbers(client, viewer_bundle, tmp_path):  # noqa: F811
    answer = _upload(client, US_image=("lesion.png", viewer_bundle.image.read_bytes()),
                     US_mask=("lesion_mask.png", viewer_bundle.mask.read_bytes()))
    assert answer.status_code == 200, answer.text
    shown = answer.json()

    manifest = write_manifest(tmp_path, viewer_bundle.image, viewer_bundle.mask)
    outcome = CliRunner().invoke(cli, ["predict", str(viewer_bundle.path), str(manifest), "--out", str(tmp_path / "out")])
    assert outcome.exit_code == 0, outcome.output
    printed = pd.read_csv(tmp_path / "out" / "predictions.csv").iloc[0]

    assert 0.0 < shown["probability"] < 1.0
    assert shown["probability"] == printed["probability"]  # exactly: one prediction function behind both
    assert shown["predicted_class"] == printed["predicted_class"]
    bundle = load_bundle(viewer_bundle.path)
    assert shown["class_name"] == ("malignant" if shown["probability"] >= bundle.threshold else "benign")
    assert shown["parts"] == [{"block": "US.radiomic", "modality": "US", "kind": "radiomic",
                               "probability": shown["probability"], "weight": None}]
    assert shown["gradcam"] == []  # a radiomic model has no deep part to explain
    assert [preview["modality"] for preview in shown["previews"]] == ["US"]
    assert shown["previews"][0]["image"].startswith("data:image/png;base64,")


def test_key_features_sit_against_the_training_range_mean_and_sd(client, viewer_bundle):  # noqa: F811
    shown = _upload(client, US_image=("a.png", viewer_bundle.image.read_bytes()),
                    US_mask=("b.png", viewer_bundle.mask.read_bytes())).json()
    features = shown["features"]
    assert features, "a logistic model on radiomic features has selected features to show"
    # The final model was fitted on every training row: the band is their smallest to largest value
    # and the centre their mean (SD for the z-score), computed here from the training feature table.
    training = compute_feature_tables(read_manifest(viewer_bundle.folder / "train.csv"), ["radiomic"],
                                      store_dir=viewer_bundle.store, progress=False).tables["radiomic"]
    assert len(training) == len(viewer_bundle.training)
    case_row = {"patient_id": "case", "modality": "US", "image": str(viewer_bundle.image),
                "mask": str(viewer_bundle.mask), "label": "benign"}
    case = compute_feature_tables(Cohort.from_table(pd.DataFrame([case_row]), viewer_bundle.folder), ["radiomic"],
                                  store_dir=viewer_bundle.store, progress=False).tables["radiomic"]
    for feature in features:
        column = training[feature["feature"]].astype(float)
        assert (feature["low"], feature["high"]) == (column.min(), column.max())
        assert feature["reference"] == "training range (smallest to largest)"
        assert feature["centre"] == pytest.approx(column.mean(), rel=1e-9)
        assert feature["spread"] == pytest.approx(column.std(ddof=0), rel=1e-9)
        assert feature["value"] == pytest.approx(float(case[feature["feature"]].iloc[0]), rel=1e-12)
        assert feature["z_score"] == pytest.approx((feature["value"] - column.mean()) / column.std(ddof=0), rel=1e-9)
        assert feature["outside"] == (not column.min() <= feature["value"] <= column.max())
    weights = [abs(feature["weight"]) for feature in features]
    assert weights == sorted(weights, reverse=True)


def test_a_case_unlike_the_training_images_is_flagged(client, viewer_bundle):  # noqa: F811
    # A 4x4-pixel "lesion": its shape and texture features lie far outside anything seen in training.
    with Image.open(viewer_bundle.mask) as mask:
        height, width = np.asarray(mask).shape[:2]
    tiny = np.zeros((height, width), np.uint8)
    tiny[height // 2:height // 2 + 4, width // 2:width // 2 + 4] = 255
    shown = _upload(client, US_image=("i.png", viewer_bundle.image.read_bytes()), US_mask=("tiny.png", _png(tiny))).json()
    assert shown["probability"] is not None  # flagged, still scored: the reader decides
    assert any("outside the training range" in warning for warning in shown["warnings"]), shown["warnings"]
    outside = [feature for feature in shown["features"] if feature["outside"]]
    assert outside and all(not feature["low"] <= feature["value"] <= feature["high"] for feature in outside)


def test_bad_uploads_get_a_clear_message_never_a_traceback(client, viewer_bundle):  # noqa: F811
    image_bytes, mask_bytes = viewer_bundle.image.read_bytes(), viewer_bundle.mask.read_bytes()
    with Image.open(viewer_bundle.mask) as mask:
        height, width = np.asarray(mask).shape[:2]
    cases = {
        "not an image": ({"US_image": ("notes.png", b"these are my notes, not pixels"), "US_mask": ("m.png", mask_bytes)},
                         r"US image 'notes\.png': cannot read \.png"),
        "unknown format": ({"US_image": ("scan.docx", b"PK..."), "US_mask": ("m.png", mask_bytes)},
                           r"US image 'scan\.docx': unknown image format \.docx"),
        "mask of another size": ({"US_image": ("i.png", image_bytes),
                                  "US_mask": ("small.png", _png(np.full((height // 2, width // 2), 255, np.uint8)))},
                                 r"US mask 'small\.png': mask size .* differs from image size .* of US image 'i\.png'"),
        "empty mask": ({"US_image": ("i.png", image_bytes), "US_mask": ("blank.png", _png(np.zeros((height, width), np.uint8)))},
                       r"US mask 'blank\.png': mask is empty"),
        "image without its mask": ({"US_image": ("i.png", image_bytes)},
                                   r"US: the image 'i\.png' came without its mask"),
        "empty file": ({"US_image": ("i.png", b""), "US_mask": ("m.png", mask_bytes)}, r"US image 'i\.png': the file is empty"),
        "a modality the model does not use": ({"MG_image": ("i.png", image_bytes), "MG_mask": ("m.png", mask_bytes)},
                                              r"this model uses US; it has no use for MG"),
        "nothing": ({}, r"upload an image and its mask for US"),
    }
    for name, (files, expected) in cases.items():
        answer = _upload(client, **files) if files else client.post("/api/predict", data={})
        assert answer.status_code == 400, (name, answer.text)
        message = answer.json()["error"]
        assert re.search(expected, message), (name, message)
        assert "Traceback" not in message and "/tmp" not in message and "dlradiomics-serve-" not in message, name


def test_uploaded_file_names_cannot_leave_the_case_folder():
    assert safe_file_name("../../etc/passwd", "image") == "passwd"
    assert safe_file_name("C:\\Users\\me\\scan 1.nii.gz", "image") == "scan_1.nii.gz"
    assert safe_file_name("..", "mask") == "mask"


def test_the_page_loads_nothing_from_the_network(client):
    page = client.get("/")
    assert page.status_code == 200 and "case viewer" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        # The SVG namespace is a name, not a request; nothing else may point outside the server.
        assert not re.findall(r"(?:https?:)?//(?!www\.w3\.org/2000/svg)[\w.-]+\.\w", text.replace("// ", "")), path
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert asset.startswith("/static/") and client.get(asset).status_code == 200


def test_serve_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    outcome = CliRunner().invoke(cli, ["serve", str(tmp_path)])
    assert outcome.exit_code == 2
    assert "bundle.json" in outcome.output and "missing" in outcome.output


@pytest.mark.slow
def test_a_deep_model_shows_its_grad_cam_overlay(viewer_bundle, tmp_path_factory):  # noqa: F811
    import yaml

    from dlradiomics.study.study import Study

    folder = tmp_path_factory.mktemp("deep-viewer")
    study = {"name": "deep viewer", "cohort": {"manifest": str(viewer_bundle.folder / "train.csv"), "modalities": ["US"]},
             "deep": {"pca_components": 3}, "classifiers": ["logistic"], "feature_sources": ["deep"],
             "fusion": ["single"], "cv": {"outer_folds": 2, "inner_folds": 2},
             "report": {"bootstrap": 10, "gradcam_examples": 0, "canary": False}}
    (folder / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    bundle = load_bundle(Study.from_yaml(folder / "study.yaml").run(progress=False).bundle_path)
    shown = TestClient(create_app(bundle)).post(
        "/api/predict", files={"US.image": ("i.png", viewer_bundle.image.read_bytes()),
                               "US.mask": ("m.png", viewer_bundle.mask.read_bytes())}).json()
    assert [part["block"] for part in shown["parts"]] == ["US.deep"]
    assert [overlay["modality"] for overlay in shown["gradcam"]] == ["US"]
    with Image.open(io.BytesIO(base64.b64decode(shown["gradcam"][0]["image"].split(",", 1)[1]))) as overlay:
        assert overlay.mode == "RGB" and min(overlay.size) > 32
    assert shown["features"] == []  # deep features have no names to place; Grad-CAM explains them

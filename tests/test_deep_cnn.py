"""CNNs trained inside the training folds: baselines (CnnClassifier) and fine-tuned deep features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.cohort import load_row_roi
from dlradiomics.evaluation.crossval import PREDICTION_COLUMNS, cross_validate_patients
from dlradiomics.features.deep.activations import front_activations, normalise_crops
from dlradiomics.features.deep.backbones import create_backbone
from dlradiomics.features.deep.cnn import CnnClassifier, FineTunedEmbeddings, validation_split
from dlradiomics.features.deep.gradcam import grad_cam_roi
from dlradiomics.features.deep.preprocessing import CropSettings, prepare_roi
from dlradiomics.features.deep.stages import split_backbone
from cnn_rois import learnable_cohort
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")

FAST = {"image_size": 64, "epochs": 4, "batch_size": 8}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return learnable_cohort(tmp_path_factory.mktemp("rois"), n_patients=20, images_per_patient=2)


def _outer_folds(table, n_folds=3):
    patients = sorted(table["patient_id"].unique())
    return pd.DataFrame({"patient_id": patients, "repeat": 0, "fold": [i % n_folds for i in range(len(patients))]})


def test_cnn_baseline_in_the_outer_folds_gives_crossvals_prediction_rows(cohort, tmp_path):
    X = cohort.set_index("patient_id")
    model = CnnClassifier("efficientnet_lite0", "imagenet", store_dir=str(tmp_path / "store"), **FAST)
    oof = cross_validate_patients(model, X, cohort["label"].to_numpy(), outer=_outer_folds(cohort),
                                  threshold_source="train")
    assert tuple(oof.columns) == PREDICTION_COLUMNS
    assert sorted(oof["patient_id"]) == sorted(cohort["patient_id"].unique())
    # Bright versus dark lesions: a network that learns anything from its training patients separates them.
    assert roc_auc_score(oof["y_true"], oof["prob"]) > 0.9


def test_fine_tuned_embeddings_feed_a_radiomics_pipeline_inside_the_folds(cohort, tmp_path):
    X = cohort.set_index("patient_id")
    pipeline = make_pipeline(FineTunedEmbeddings("efficientnet_lite0", "imagenet", **FAST), StandardScaler(),
                             LogisticRegression(C=0.1, max_iter=2000))
    oof = cross_validate_patients(pipeline, X, cohort["label"].to_numpy(), outer=_outer_folds(cohort),
                                  threshold_source="train")
    assert roc_auc_score(oof["y_true"], oof["prob"]) > 0.9
    fitted = pipeline.fit(X, cohort["label"])
    assert fitted[0].n_features_out_ == 1280
    names = fitted[0].get_feature_names_out()
    assert len(names) == 1280 and names[0] == "deep_0000"
    assert fitted[0].transform(X.iloc[:3]).shape == (3, 1280)


def test_validation_patients_are_whole_patients_of_both_classes():
    rng = np.random.default_rng(0)
    patients = np.repeat([f"P{index}" for index in range(40)], rng.integers(1, 4, size=40))
    labels = np.array([int(patient[1:]) % 2 for patient in patients])
    held_out = validation_split(labels, patients, 0.2, seed=3)
    validation, training = set(patients[held_out]), set(patients[~held_out])
    assert validation and not validation & training
    assert set(labels[held_out]) == {0, 1}
    assert 5 <= len(validation) <= 11  # a fifth of 40 patients, stratified
    assert not validation_split(labels[:3], patients[:3], 0.2, seed=3).any(), "too few patients: no split"


def test_a_fitted_network_is_read_back_for_the_same_rows_and_labels_and_retrained_otherwise(cohort, tmp_path):
    X = cohort.set_index("patient_id").iloc[:24]
    y = cohort["label"].to_numpy()[:24]
    store = str(tmp_path / "store")
    first = CnnClassifier(weights=None, store_dir=store, **FAST).fit(X, y)
    again = CnnClassifier(weights=None, store_dir=store, **FAST).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), again.predict_proba(X))
    pd.testing.assert_frame_equal(pd.DataFrame(first.history_), pd.DataFrame(again.history_))
    assert first.weights_id_ == again.weights_id_

    flipped = y.copy()
    flipped[0] = 1 - flipped[0]
    other = CnnClassifier(weights=None, store_dir=store, **FAST).fit(X, flipped)
    assert other.weights_id_ != first.weights_id_, "a changed label must not reuse a fitted network"


def test_front_activations_are_the_fronts_output_and_are_cached(cohort, tmp_path):
    backbone = create_backbone("efficientnet_lite0", None)
    front, _ = split_backbone(backbone, 2)
    rows = cohort.iloc[:3]
    arguments = {"n_front_blocks": 15, "input_size": 64, "views": ("identity", "hflip"),
                 "store_dir": tmp_path / "store"}
    computed = front_activations(rows, backbone, front, **arguments)

    roi = load_row_roi(rows.iloc[1])
    prepared = prepare_roi(roi.image, roi.mask, input_size=64, mean=backbone.mean, std=backbone.std,
                           settings=CropSettings())
    with torch.inference_mode():
        expected = front(prepared.tensor[None])[0]
        mirrored = front(prepared.tensor.flip(-1)[None])[0]
    torch.testing.assert_close(computed.arrays["identity"][1], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(computed.arrays["hflip"][1], mirrored, rtol=1e-4, atol=1e-5)

    calls = []
    front.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    from dlradiomics.features.deep import activations

    activations._MEMO = activations._BytesLRU(activations._MEMO_BYTES)  # forget this process's memo: read the store
    cached = front_activations(rows, backbone, front, **arguments)
    assert calls == []
    torch.testing.assert_close(cached.arrays["hflip"], computed.arrays["hflip"], rtol=0, atol=0)


def test_normalised_crops_match_the_networks_preprocessing(cohort):
    roi = load_row_roi(cohort.iloc[0])
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    prepared = prepare_roi(roi.image, roi.mask, input_size=48, mean=mean, std=std)
    torch.testing.assert_close(normalise_crops(torch.from_numpy(prepared.crop)[None], mean, std)[0], prepared.tensor)


def test_grad_cam_explains_the_fine_tuned_network_that_predicts(cohort):
    X = cohort.set_index("patient_id")
    model = CnnClassifier("efficientnet_lite0", "imagenet", n_last_blocks=2, **FAST).fit(X, cohort["label"])
    backbone, head = model.gradcam_network()
    assert backbone.input_size == 64 and "-tuned-" in backbone.weights_id
    imagenet = create_backbone("efficientnet_lite0", "imagenet")
    assert not torch.equal(backbone.model._conv_head.weight, imagenet.model._conv_head.weight)
    row = cohort.iloc[5]
    roi = load_row_roi(row)
    result = grad_cam_roi(backbone, head, roi.image, roi.mask, target_class=1)
    assert result.heatmap.shape == (64, 64)
    np.testing.assert_allclose(model.grad_cam(roi.image, roi.mask).heatmap, result.heatmap, atol=1e-6)
    assert result.probability == pytest.approx(model.predict_proba(X.iloc[[5]])[0, 1], abs=1e-5)


def test_unreadable_rois_are_reported_not_fatal(cohort, tmp_path):
    X = cohort.set_index("patient_id").iloc[:16].copy()
    X.iloc[2, X.columns.get_loc("image")] = str(tmp_path / "missing.png")
    model = CnnClassifier(weights=None, **FAST).fit(X, cohort["label"].to_numpy()[:16])
    assert [failure["image"] for failure in model.failures_] == [str(tmp_path / "missing.png")]
    probabilities = model.predict_proba(X)
    assert np.isnan(probabilities[2]).all() and not np.isnan(np.delete(probabilities, 2, axis=0)).any()


def test_a_table_without_roi_paths_is_refused_by_name():
    with pytest.raises(ValueError, match="image"):
        CnnClassifier().fit(pd.DataFrame({"x": [1.0, 2.0]}), [0, 1])
    with pytest.raises(ValueError, match="trainable"):
        CnnClassifier(trainable="some").fit(pd.DataFrame({"image": ["a"], "mask": ["b"]}), [0])


@pytest.mark.parametrize("name", ["resnet50", "resnet101", "vgg19", "googlenet", "inception_v3"])
def test_every_paper_baseline_trains_a_step_and_predicts(name, cohort):
    X = cohort.set_index("patient_id").iloc[:8]
    size = 80 if name == "inception_v3" else 64
    model = CnnClassifier(name, None, image_size=size, epochs=1, batch_size=4, validation_fraction=0).fit(
        X, cohort["label"].to_numpy()[:8])
    assert model.history_["epoch"] == [1]
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (8, 2) and np.allclose(probabilities.sum(axis=1), 1)
    untrained = create_backbone(name, None)
    changed = [n for n, p in model.gradcam_network()[0].model.named_parameters()
               if not torch.equal(p, dict(untrained.model.named_parameters())[n])]
    assert changed, "the last block must have trained"


def test_end_to_end_training_changes_the_first_layer_and_last_blocks_leaves_it(cohort):
    X = cohort.set_index("patient_id").iloc[:8]
    y = cohort["label"].to_numpy()[:8]
    untrained = create_backbone("efficientnet_lite0", None).model._conv_stem.weight
    whole = CnnClassifier(weights=None, trainable="all", image_size=32, epochs=1, batch_size=4,
                          validation_fraction=0).fit(X, y)
    last = CnnClassifier(weights=None, image_size=32, epochs=1, batch_size=4, validation_fraction=0).fit(X, y)
    assert not torch.equal(whole.gradcam_network()[0].model._conv_stem.weight, untrained)
    assert torch.equal(last.gradcam_network()[0].model._conv_stem.weight, untrained)


def test_a_fitted_cnn_saves_as_plain_data_and_predicts_the_same_after_loading(cohort, tmp_path):
    import skops.io

    X = cohort.set_index("patient_id").iloc[:16]
    model = CnnClassifier(weights=None, **FAST).fit(X, cohort["label"].to_numpy()[:16])
    payload = skops.io.dumps(model)
    untrusted = skops.io.get_untrusted_types(data=payload)
    assert all(name.startswith("dlradiomics.features.deep.") for name in untrusted), untrusted
    loaded = skops.io.loads(payload, trusted=untrusted)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(pd.DataFrame(loaded.history_), pd.DataFrame(model.history_))

"""CNN baselines as out-of-fold predictions, and the in-fold PCA of deep features."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from dlradiomics.features.deep.baselines import cnn_baseline_oof, out_of_fold_head_predictions
from dlradiomics.features.deep.head import EmbeddingHeadClassifier
from dlradiomics.features.deep.reduction import deep_feature_pipeline

sys.path.insert(0, str(Path(__file__).parent))
from test_deep_embeddings import _table  # noqa: E402  (the same small generated cohort)
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _random_embeddings(n_patients=60, images_per_patient=2, n_features=200, seed=0):
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"P{index:03d}" for index in range(n_patients)], images_per_patient)
    patient_label = dict(zip(np.unique(patients), rng.integers(0, 2, n_patients)))
    meta = pd.DataFrame({"roi_id": [f"{p}/US/{i}" for i, p in enumerate(patients)], "patient_id": patients,
                         "modality": "US", "image": "x.png", "mask": "m.png",
                         "label": [patient_label[p] for p in patients]})
    features = pd.DataFrame(rng.normal(size=(len(patients), n_features)),
                            columns=[f"deep_{index:04d}" for index in range(n_features)])
    folds = pd.Series({patient: index % 5 for index, patient in enumerate(np.unique(patients))})
    return pd.concat([meta, features], axis=1), folds


def test_out_of_fold_head_cannot_memorise_noise():
    """Leakage canary: a head that memorises its training set scores AUC ~1 on it; out of fold ~0.5."""
    embeddings, folds = _random_embeddings()
    head = EmbeddingHeadClassifier(epochs=100, learning_rate=0.01)
    in_sample = clone(head).fit(embeddings.filter(like="deep_"), embeddings["label"])
    assert roc_auc_score(embeddings["label"], in_sample.predict_proba(embeddings.filter(like="deep_"))[:, 1]) > 0.95
    oof = out_of_fold_head_predictions(embeddings, folds, head)
    assert list(oof.columns) == ["patient_id", "fold", "prob", "label"]
    assert len(oof) == 60 and oof["prob"].notna().all()
    assert abs(roc_auc_score(oof["label"], oof["prob"]) - 0.5) < 0.2


def test_patient_probability_is_the_mean_of_its_images_from_the_model_not_trained_on_it():
    embeddings, folds = _random_embeddings(n_patients=20, n_features=5)
    head = EmbeddingHeadClassifier(epochs=5)
    oof = out_of_fold_head_predictions(embeddings, folds, head).set_index("patient_id")
    patient = "P003"
    held_out = embeddings["patient_id"].map(folds) == folds[patient]
    model = clone(head).fit(embeddings.loc[~held_out].filter(like="deep_"), embeddings.loc[~held_out, "label"])
    images = embeddings[embeddings["patient_id"] == patient].filter(like="deep_")
    assert oof.loc[patient, "prob"] == pytest.approx(model.predict_proba(images)[:, 1].mean(), abs=1e-6)
    assert oof.loc[patient, "fold"] == folds[patient]


def test_cnn_baseline_end_to_end_on_a_small_cohort(tmp_path):
    table = _table(tmp_path, n_rois=8)  # 4 patients, 2 images each, labels 0, 1, 0, 1
    table["fold"] = table["patient_id"].map({"P0": 0, "P1": 0, "P2": 1, "P3": 1})
    oof = cnn_baseline_oof(table, "efficientnet_lite0", "fold", weights=None, epochs=3,
                           store_dir=tmp_path / "store", device="cpu")
    assert sorted(oof["patient_id"]) == ["P0", "P1", "P2", "P3"]
    assert oof.set_index("patient_id")["fold"].to_dict() == {"P0": 0, "P1": 0, "P2": 1, "P3": 1}
    assert oof["prob"].between(0, 1).all()


def test_folds_that_miss_a_patient_or_split_one_are_refused(tmp_path):
    table = _table(tmp_path, n_rois=4)
    with pytest.raises(ValueError, match="P1"):
        cnn_baseline_oof(table, "efficientnet_lite0", {"P0": 0}, weights=None)
    table["fold"] = [0, 1, 0, 0]
    with pytest.raises(ValueError, match="P0"):
        cnn_baseline_oof(table, "efficientnet_lite0", "fold", weights=None)


def test_deep_feature_pipeline_reduces_to_32_components_refitted_per_fold():
    embeddings, folds = _random_embeddings(n_patients=60, n_features=300)
    X, y = embeddings.filter(like="deep_").to_numpy(), embeddings["label"].to_numpy()
    reducer = deep_feature_pipeline()
    assert reducer.fit_transform(X).shape == (120, 32)
    # In a grouped CV of noise, the whole pipeline (PCA fitted per training fold) stays near chance.
    model = make_pipeline(deep_feature_pipeline(), LogisticRegression(max_iter=1000))
    oof = cross_val_predict(model, X, y, groups=embeddings["patient_id"], cv=GroupKFold(5),
                            method="predict_proba")[:, 1]
    assert abs(roc_auc_score(y, oof) - 0.5) < 0.2
    assert [name for name, _ in deep_feature_pipeline(standardize=False).steps] == ["pca"]

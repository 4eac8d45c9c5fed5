"""The in-fold PCA of deep features."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from dlradiomics.features.deep.reduction import deep_feature_pipeline


def _random_embeddings(n_patients=60, images_per_patient=2, n_features=200, seed=0):
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"P{index:03d}" for index in range(n_patients)], images_per_patient)
    patient_label = dict(zip(np.unique(patients), rng.integers(0, 2, n_patients)))
    meta = pd.DataFrame({"roi_id": [f"{p}/US/{i}" for i, p in enumerate(patients)], "patient_id": patients,
                         "modality": "US", "image": "x.png", "mask": "m.png",
                         "label": [patient_label[p] for p in patients]})
    features = pd.DataFrame(rng.normal(size=(len(patients), n_features)),
                            columns=[f"deep_{index:04d}" for index in range(n_features)])
    return pd.concat([meta, features], axis=1)


def test_deep_feature_pipeline_reduces_to_32_components_refitted_per_fold():
    embeddings = _random_embeddings(n_patients=60, n_features=300)
    X, y = embeddings.filter(like="deep_").to_numpy(), embeddings["label"].to_numpy()
    reducer = deep_feature_pipeline()
    assert reducer.fit_transform(X).shape == (120, 32)
    # In a grouped CV of noise, the whole pipeline (PCA fitted per training fold) stays near chance.
    model = make_pipeline(deep_feature_pipeline(), LogisticRegression(max_iter=1000))
    oof = cross_val_predict(model, X, y, groups=embeddings["patient_id"], cv=GroupKFold(5),
                            method="predict_proba")[:, 1]
    assert abs(roc_auc_score(y, oof) - 0.5) < 0.2
    assert [name for name, _ in deep_feature_pipeline(standardize=False).steps] == ["pca"]


def test_deep_feature_pipeline_keeps_what_a_small_training_fold_supports():
    # 20 training rows of 300 features: centred, they span 19 directions, so 19 components are kept
    # (scikit-learn's PCA(32) refuses such a fold); the 19 explain all the variance.
    X = np.random.default_rng(3).normal(size=(20, 300))
    reducer = deep_feature_pipeline(standardize=False).fit(X)
    pca = reducer.named_steps["pca"]
    assert pca.n_components_ == 19 and reducer.transform(X).shape == (20, 19)
    np.testing.assert_allclose(pca.pca_.explained_variance_.sum(), np.var(X, axis=0, ddof=1).sum(), rtol=1e-10)
    assert list(pca.get_feature_names_out())[-1] == "pca18"
    # with enough rows the paper's 32 are kept
    assert deep_feature_pipeline().fit(np.random.default_rng(4).normal(size=(40, 300))).named_steps["pca"].n_components_ == 32

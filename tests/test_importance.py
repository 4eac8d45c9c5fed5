"""Permutation importance on held-out outer folds, checked against shuffling the raw feature by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from dlradiomics.evaluation import RepeatedPatientKFold
from dlradiomics.evaluation.importance import held_out_permutation_importance
from dlradiomics.evaluation.splits import iter_outer_folds
from dlradiomics.models import make_pipeline
from evaluation_data import make_image_table


def test_importance_at_the_classifier_equals_shuffling_the_raw_feature_of_the_whole_model():
    X, y = make_image_table(n_patients=120, n_features=5, signal=1.2, seed=6)
    groups = X.index.to_numpy()
    folds = RepeatedPatientKFold(n_splits=3, seed=1).fold_table(y.to_numpy(), groups)
    # A small forest keeps the hundreds of predictions below cheap.
    estimator = make_pipeline(RandomForestClassifier(n_estimators=30, random_state=0), ("mannwhitney:0.05",))
    importance = held_out_permutation_importance(estimator, X, y, groups, folds, n_repeats=30, seed=0)
    assert set(importance["fold"]) == {0, 1, 2}
    mean = importance.groupby("feature")["importance"].mean()
    assert mean[["f0", "f1"]].min() > 0.05  # the informative features matter on unseen patients

    # By hand, on the raw table: fit the whole pipeline on the training rows, shuffle one raw column
    # of the test rows many times, and average the drop in AUC.
    rng = np.random.default_rng(0)
    fold = next(iter_outer_folds(folds, groups))
    model = estimator.fit(X.iloc[fold.train_index], y.iloc[fold.train_index])
    test, labels = X.iloc[fold.test_index], y.iloc[fold.test_index]
    base = roc_auc_score(labels, model.predict_proba(test)[:, 1])
    ours = importance[importance["fold"] == fold.fold].set_index("column")["importance"]
    for column in ours.index:
        drops = []
        for _ in range(100):
            shuffled = test.copy()
            shuffled[column] = rng.permutation(shuffled[column].to_numpy())
            drops.append(base - roc_auc_score(labels, model.predict_proba(shuffled)[:, 1]))
        assert ours[column] == pytest.approx(np.mean(drops), abs=0.02)
    # features the selection dropped in that fold are absent (shuffling them changes nothing)
    selected = set(model[:-1].get_feature_names_out())
    assert set(ours.index) == selected


def test_a_model_of_pca_components_has_no_named_importance():
    X, y = make_image_table(n_patients=60, n_features=5, seed=2)
    groups = X.index.to_numpy()
    folds = RepeatedPatientKFold(n_splits=3, seed=1).fold_table(y.to_numpy(), groups)
    importance = held_out_permutation_importance(make_pipeline(RandomForestClassifier(n_estimators=10), "pca:2"), X, y, groups, folds, n_repeats=2)
    assert importance.empty

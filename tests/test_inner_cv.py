"""Inner folds grouped by patient: scikit-learn's StratifiedGroupKFold, computed once per rows and seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from dlradiomics.models import PatientGroupKFold


def _table(n_patients: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"P{i:03d}" for i in range(n_patients)], rng.integers(1, 4, n_patients))
    label_of = {patient: rng.integers(0, 2) for patient in np.unique(patients)}
    X = pd.DataFrame(rng.normal(size=(len(patients), 3)), index=pd.Index(patients, name="patient_id"))
    return X, np.array([label_of[patient] for patient in patients])


def test_splits_are_scikit_learns_stratified_group_folds_however_often_asked():
    for seed in range(4):
        X, y = _table(30 + seed, seed)
        expected = list(StratifiedGroupKFold(3, shuffle=True, random_state=seed).split(X, y, X.index.to_numpy()))
        for _ in range(2):  # the second time from the cache
            splits = list(PatientGroupKFold(3, random_state=seed).split(X, y))
            assert len(splits) == len(expected)
            for (train, test), (train_expected, test_expected) in zip(splits, expected):
                np.testing.assert_array_equal(train, train_expected)
                np.testing.assert_array_equal(test, test_expected)
                assert not set(X.index[train]) & set(X.index[test])
            splits[0][0][:] = -1  # a caller changing what it was given changes no later split


def test_string_labels_and_explicit_groups_split_as_scikit_learn_does():
    X, y = _table(24, 9)
    labels = np.where(y == 1, "malignant", "benign")
    groups = np.asarray([f"g-{patient}" for patient in X.index])
    expected = list(StratifiedGroupKFold(2, shuffle=True, random_state=1).split(X, labels, groups))
    splits = list(PatientGroupKFold(2, random_state=1).split(X.to_numpy(), labels, groups))
    for (train, test), (train_expected, test_expected) in zip(splits, expected, strict=True):
        np.testing.assert_array_equal(train, train_expected)
        np.testing.assert_array_equal(test, test_expected)

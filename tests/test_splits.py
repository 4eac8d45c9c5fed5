"""Outer folds: stratified, grouped by patient, saved and reused; published folds read from a column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evaluation_data import make_image_table

from dlradiomics.evaluation.splits import (
    TRAIN_ONLY,
    PatientHoldout,
    RepeatedPatientKFold,
    assert_patients_disjoint,
    fold_table_from_column,
    iter_outer_folds,
    load_fold_table,
)
from dlradiomics.io.atomic import write_csv_atomic


@pytest.fixture(scope="module")
def image_rows():
    X, y = make_image_table(n_patients=100, seed=3)
    return X, y.to_numpy(), X.index.to_numpy()


def test_repeated_kfold_puts_each_patient_in_one_test_fold_per_repeat(image_rows):
    _, y, groups = image_rows
    table = RepeatedPatientKFold(n_splits=5, n_repeats=3, seed=7).fold_table(y, groups)
    assert len(table) == 3 * len(np.unique(groups))
    assert table.groupby("repeat")["patient_id"].nunique().eq(len(np.unique(groups))).all()
    assert set(table["fold"]) == set(range(5))
    by_repeat = table.pivot(index="patient_id", columns="repeat", values="fold")
    assert not by_repeat[0].equals(by_repeat[1]), "repeats must reshuffle"


def test_folds_are_stratified_and_never_split_a_patient(image_rows):
    _, y, groups = image_rows
    table = RepeatedPatientKFold(n_splits=5, seed=0).fold_table(y, groups)
    overall = y.mean()
    for fold in iter_outer_folds(table, groups):
        assert not set(groups[fold.train_index]) & set(groups[fold.test_index])
        assert abs(y[fold.test_index].mean() - overall) < 0.15
        assert len(fold.train_index) + len(fold.test_index) == len(y)


def test_holdout_keeps_a_fifth_of_patients_with_both_classes(image_rows):
    _, y, groups = image_rows
    table = PatientHoldout(test_size=0.2, seed=42).fold_table(y, groups)
    folds = list(iter_outer_folds(table, groups))
    assert len(folds) == 1
    test_patients = np.unique(groups[folds[0].test_index])
    assert len(test_patients) == 20
    assert set(y[folds[0].test_index]) == {0, 1}
    assert (table["fold"] == TRAIN_ONLY).sum() == 80


def test_fold_table_round_trips_through_csv(image_rows, tmp_path):
    _, y, groups = image_rows
    table = RepeatedPatientKFold(n_splits=4, n_repeats=2).fold_table(y, groups)
    loaded = load_fold_table(write_csv_atomic(table, tmp_path / "folds.csv"))
    pd.testing.assert_frame_equal(loaded, table)


def test_missing_patient_and_straddling_are_errors(image_rows):
    _, y, groups = image_rows
    table = RepeatedPatientKFold(n_splits=5).fold_table(y, groups)
    short = table[table["patient_id"] != "P0003"]
    with pytest.raises(ValueError, match="P0003"):
        list(iter_outer_folds(short, groups))
    with pytest.raises(AssertionError, match="P0001"):
        assert_patients_disjoint(np.array(["P0001", "P0002"]), np.array(["P0001"]))


def test_patient_with_two_labels_is_named():
    with pytest.raises(ValueError, match="P9"):
        RepeatedPatientKFold(n_splits=2).fold_table(np.array([0, 1, 0, 1]), np.array(["P9", "P9", "A", "B"]))


def test_image_rows_straddling_published_folds_are_named():
    rows = pd.DataFrame({"patient_id": ["a", "a", "b"], "fold5": [1, 2, 1]})
    with pytest.raises(ValueError, match="'a'"):
        fold_table_from_column(rows, "fold5")


def test_bus_bra_published_folds_keep_patients_together(bus_bra_dir):
    images = pd.read_csv(bus_bra_dir / "bus_data.csv")
    folds = pd.read_csv(bus_bra_dir / "5-fold-cv.csv")
    rows = images.merge(folds[["ID", "kFold"]], on="ID")
    rows["patient_id"] = rows["Case"].astype(str)
    table = fold_table_from_column(rows, "kFold")
    assert len(table) == rows["Case"].nunique() == 1064
    assert sorted(table["fold"].unique()) == [1, 2, 3, 4, 5]
    groups = rows["patient_id"].to_numpy()
    outer = list(iter_outer_folds(table, groups))
    assert len(outer) == 5
    assert sum(len(fold.test_index) for fold in outer) == len(rows)

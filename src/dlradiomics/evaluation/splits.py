"""Outer cross-validation folds, grouped by patient, saved to a file and reused.

A *fold table* has one row per patient and repeat: ``patient_id, repeat, fold``, where ``fold`` is
the index of the outer fold in which the patient is a test patient (``-1``: the patient is only
ever used for training, as in a fixed train/test split). Every experiment that reads the same fold
table sees the same folds (the nnU-Net habit), whatever model it runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

FOLD_TABLE_COLUMNS = ("patient_id", "repeat", "fold")
TRAIN_ONLY = -1


@dataclass(frozen=True)
class RepeatedPatientKFold:
    """Stratified, patient-grouped K-fold, repeated with different seeds.

    Args:
        n_splits: Number of outer folds.
        n_repeats: Number of repetitions, each with its own shuffle.
        seed: Seed of the first repetition; repetition ``r`` uses ``seed + r``.
    """

    n_splits: int = 5
    n_repeats: int = 1
    seed: int = 0

    def fold_table(self, y: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
        """Assign every patient a test fold in each repetition.

        Args:
            y: Row labels (0/1); one row per image, several rows may share a patient.
            groups: Patient id of each row.

        Returns:
            The fold table (``patient_id, repeat, fold``).
        """
        y, groups = _validated_labels_and_groups(y, groups)
        tables = []
        for repeat in range(self.n_repeats):
            splitter = StratifiedGroupKFold(n_splits=self.n_splits, shuffle=True, random_state=self.seed + repeat)
            fold_of_patient: dict[object, int] = {}
            for fold, (_, test_index) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
                fold_of_patient.update(dict.fromkeys(np.unique(groups[test_index]), fold))
            tables.append(
                pd.DataFrame(
                    {"patient_id": list(fold_of_patient), "repeat": repeat, "fold": list(fold_of_patient.values())}
                )
            )
        return _sorted_fold_table(pd.concat(tables, ignore_index=True))


@dataclass(frozen=True)
class PatientHoldout:
    """A single stratified, patient-grouped train/test split (the paper's fixed-seed 80/20).

    Args:
        test_size: Fraction of patients in the test set.
        seed: Seed of the split.
    """

    test_size: float = 0.2
    seed: int = 0

    def fold_table(self, y: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
        """Mark test patients with fold 0 and training patients with fold -1.

        The split is stratified by the patient's label.

        Args:
            y: Row labels (0/1).
            groups: Patient id of each row.

        Returns:
            The fold table (one repeat).
        """
        y, groups = _validated_labels_and_groups(y, groups)
        patient_labels = pd.Series(y, index=groups).groupby(level=0).max()
        _, test_patients = train_test_split(
            patient_labels.index.to_numpy(),
            test_size=self.test_size,
            stratify=patient_labels.to_numpy(),
            random_state=self.seed,
        )
        folds = np.where(patient_labels.index.isin(test_patients), 0, TRAIN_ONLY)
        table = pd.DataFrame({"patient_id": patient_labels.index, "repeat": 0, "fold": folds})
        return _sorted_fold_table(table)


def patient_labels_of(feature_tables: Mapping[str, pd.DataFrame]) -> pd.Series:
    """Each patient's label, from image-level feature tables (``patient_id``, ``label`` columns).

    Args:
        feature_tables: Feature tables by kind.

    Returns:
        Integer labels indexed by patient id (strings), in patient order.

    Raises:
        ValueError: If a patient carries different labels.
    """
    rows = pd.concat([table[["patient_id", "label"]] for table in feature_tables.values()], ignore_index=True)
    rows["patient_id"] = rows["patient_id"].astype(str)
    labels_per_patient = rows.groupby("patient_id")["label"].nunique()
    conflicting = labels_per_patient.index[labels_per_patient > 1].tolist()
    if conflicting:
        raise ValueError(f"patients {conflicting[:10]} carry different labels in the feature tables")
    return rows.groupby("patient_id")["label"].first().astype(int)


def fold_table_from_column(table: pd.DataFrame, column: str, *, patient_column: str = "patient_id") -> pd.DataFrame:
    """Read published folds from a column of an image- or patient-level table.

    Fold numbers are kept as given (BUS-BRA's ``kFold`` counts 1..5); a missing value means the
    patient is only used for training.

    Args:
        table: Table with one row per image or patient.
        column: Column holding the test-fold index (e.g. ``"fold5"`` or BUS-BRA's ``"kFold"``).
        patient_column: Column holding the patient id.

    Returns:
        The fold table (one repeat).

    Raises:
        ValueError: If a column is missing or a patient's images carry different folds.
    """
    for name in (column, patient_column):
        if name not in table.columns:
            raise ValueError(f"fold table source has no column {name!r} (columns: {list(table.columns)})")
    folds_per_patient = table.groupby(patient_column)[column].nunique(dropna=False)
    straddling = folds_per_patient.index[folds_per_patient > 1].tolist()
    if straddling:
        raise ValueError(f"patients {straddling[:10]} have images in more than one fold of column {column!r}")
    first = table.groupby(patient_column)[column].first()
    folds = first.fillna(TRAIN_ONLY).astype(int)
    return _sorted_fold_table(pd.DataFrame({"patient_id": folds.index, "repeat": 0, "fold": folds.to_numpy()}))


def fold_table_from_groups(table: pd.DataFrame, column: str, *, patient_column: str = "patient_id") -> pd.DataFrame:
    """Leave-one-group-out folds from a column naming each patient's site, scanner or centre.

    Each distinct value is one outer fold: its patients are the test set, every other patient
    trains, so each model is scored on a site it has never seen. Folds are numbered in the sorted
    order of the values, which the column ``group`` keeps beside them.

    Args:
        table: Table with one row per image or patient.
        column: Column holding the group (e.g. BUS-BRA's ``device``).
        patient_column: Column holding the patient id.

    Returns:
        The fold table (one repeat) with the extra column ``group``.

    Raises:
        ValueError: A column is missing, a patient has no group or several, or there are fewer
            than two groups.
    """
    for name in (column, patient_column):
        if name not in table.columns:
            raise ValueError(f"group column source has no column {name!r} (columns: {list(table.columns)})")
    values = table[[patient_column, column]].copy()
    values[column] = values[column].astype("string").str.strip().replace("", pd.NA)
    absent = values.groupby(patient_column)[column].apply(lambda v: v.isna().all())
    if absent.any():
        patients = absent.index[absent].tolist()
        raise ValueError(f"patients {patients[:10]} have no value in the group column {column!r}; every patient "
                         "needs one to be held out with its group")
    groups_per_patient = values.dropna().groupby(patient_column)[column].unique()
    several = groups_per_patient[groups_per_patient.map(len) > 1]
    if len(several):
        patient = several.index[0]
        raise ValueError(f"patient {patient} has images in several groups of column {column!r} "
                         f"({', '.join(map(str, several.iloc[0]))}); a patient must belong to one group")
    group_of_patient = groups_per_patient.map(lambda found: str(found[0]))
    names = sorted(group_of_patient.unique())
    if len(names) < 2:
        raise ValueError(f"column {column!r} holds one group ({names[0]!r}); leaving a group out needs at least two")
    fold_of_group = {name: fold for fold, name in enumerate(names)}
    fold_table = pd.DataFrame({"patient_id": group_of_patient.index, "repeat": 0,
                               "fold": group_of_patient.map(fold_of_group).to_numpy(),
                               "group": group_of_patient.to_numpy()})
    return _sorted_fold_table(fold_table)


def load_fold_table(path: str | Path) -> pd.DataFrame:
    """Read a fold table from CSV (a run folder's `folds.csv`, or any CSV `patient_id,repeat,fold`).

    Evaluation reads fold tables but writes no files: a caller writes one with
    `dlradiomics.io.atomic.write_csv_atomic(fold_table, path)`, as the study writes `folds.csv`.

    Args:
        path: CSV file.

    Returns:
        The validated fold table (patient ids as strings).
    """
    table = pd.read_csv(path, dtype={"patient_id": str})
    try:
        return check_fold_table(table)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def check_fold_table(fold_table: pd.DataFrame) -> pd.DataFrame:
    """Check the columns of a fold table and that each patient has one fold per repeat.

    Args:
        fold_table: Candidate fold table.

    Returns:
        The same table.

    Raises:
        ValueError: If columns are missing or a patient appears twice in one repeat.
    """
    missing = [column for column in FOLD_TABLE_COLUMNS if column not in fold_table.columns]
    if missing:
        raise ValueError(f"fold table lacks columns {missing}")
    duplicated = fold_table.duplicated(["patient_id", "repeat"], keep=False)
    if duplicated.any():
        patients = fold_table.loc[duplicated, "patient_id"].unique().tolist()
        raise ValueError(f"patients {patients[:10]} have more than one fold in the same repeat")
    return fold_table


@dataclass(frozen=True)
class OuterFold:
    """Row indices of one outer fold.

    Args:
        repeat: Repetition number.
        fold: Test fold index.
        train_index: Positions of training rows.
        test_index: Positions of test rows.
    """

    repeat: int
    fold: int
    train_index: np.ndarray
    test_index: np.ndarray


def iter_outer_folds(fold_table: pd.DataFrame, groups: np.ndarray) -> Iterator[OuterFold]:
    """Turn a fold table into row indices, checking that no patient straddles train and test.

    Args:
        fold_table: The fold table.
        groups: Patient id of each row of the modelling table.

    Yields:
        One `OuterFold` per repeat and test fold.

    Raises:
        ValueError: If a patient of ``groups`` has no fold in a repeat.
    """
    check_fold_table(fold_table)
    groups = np.asarray(groups)
    group_keys = pd.Index(groups.astype(str))
    for repeat, table in fold_table.groupby("repeat", sort=True):
        fold_of_patient = pd.Series(table["fold"].to_numpy(), index=table["patient_id"].astype(str))
        missing = group_keys.difference(fold_of_patient.index)
        if len(missing):
            raise ValueError(f"patients {missing[:10].tolist()} have no fold in repeat {repeat} of the fold table")
        row_folds = fold_of_patient.reindex(group_keys).to_numpy()
        for fold in sorted(set(row_folds) - {TRAIN_ONLY}):
            train_index = np.flatnonzero(row_folds != fold)
            test_index = np.flatnonzero(row_folds == fold)
            assert_patients_disjoint(groups[train_index], groups[test_index])
            yield OuterFold(int(repeat), int(fold), train_index, test_index)


def evaluated_patients(fold_table: pd.DataFrame) -> pd.Index:
    """The patients a fold table tests at least once (training-only patients, fold ``-1``, left out).

    These are the patients an out-of-fold prediction can exist for: with a fixed train/test split,
    the training-only patients are never scored, by design.

    Args:
        fold_table: The fold table.

    Returns:
        Their patient ids, as strings, sorted.
    """
    if fold_table.empty:
        return pd.Index([], name="patient_id", dtype=str)
    tested = fold_table.loc[fold_table["fold"] != TRAIN_ONLY, "patient_id"].astype(str)
    return pd.Index(sorted(tested.unique()), name="patient_id")


def assert_patients_disjoint(train_groups: np.ndarray, test_groups: np.ndarray) -> None:
    """Fail if any patient has rows in both the training and the test set.

    Args:
        train_groups: Patient ids of training rows.
        test_groups: Patient ids of test rows.

    Raises:
        AssertionError: Naming the patients that straddle the split.
    """
    shared = np.intersect1d(np.asarray(train_groups), np.asarray(test_groups))
    if len(shared):
        raise AssertionError(f"patients {shared[:10].tolist()} are in both training and test rows")


def _validated_labels_and_groups(y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    groups = np.asarray(groups)
    if len(y) != len(groups):
        raise ValueError(f"y has {len(y)} rows but groups has {len(groups)}")
    labels_per_patient = pd.Series(y).groupby(groups).nunique()
    mixed = labels_per_patient.index[labels_per_patient > 1].tolist()
    if mixed:
        raise ValueError(f"patients {mixed[:10]} have images with different labels; a patient needs one label")
    return y, groups


def _sorted_fold_table(table: pd.DataFrame) -> pd.DataFrame:
    table = table.astype({"repeat": int, "fold": int})
    return table.sort_values(["repeat", "patient_id"], ignore_index=True)

"""Inner cross-validation grouped by patient, with the groups read from the table's index.

Every fitted choice inside a model (LASSO penalty, hyper-parameters, ensemble weights, stacking
meta-features) is made by inner CV on the training rows only. Modelling tables carry the patient
of each row as their index (see :mod:`dlradiomics.models.blocks`), so a splitter that reads the
groups from ``X.index`` keeps images of one patient together even where scikit-learn passes no
``groups`` (``GridSearchCV`` inside a ``Pipeline``, ``cross_val_predict`` in a fusion estimator).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator, StratifiedGroupKFold


def patient_groups(X, groups=None) -> np.ndarray:
    """The patient of each row: ``groups`` if given, else ``X.index``, else one group per row.

    Args:
        X: the table (a DataFrame whose index is ``patient_id``) or an array.
        groups: explicit groups, used when given.

    Returns:
        Array of group labels, one per row.
    """
    if groups is not None:
        return np.asarray(groups)
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.index.to_numpy()
    return np.arange(len(X))


class PatientGroupKFold(BaseCrossValidator):
    """Stratified K-fold grouped by patient, the groups read from ``X.index`` when not given.

    The number of folds shrinks to what the data allow (the number of patients of the rarer
    class), so small training folds still split; ``get_n_splits`` reports the requested number.

    Args:
        n_splits: number of folds wanted.
        shuffle: shuffle patients before splitting.
        random_state: seed of the shuffle.
    """

    def __init__(self, n_splits: int = 5, shuffle: bool = True, random_state: int | None = 0):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of folds actually produced for this data (the requested number when X is None)."""
        if X is None or y is None:
            return self.n_splits
        return self._feasible_splits(np.asarray(y), patient_groups(X, groups))

    def _feasible_splits(self, y: np.ndarray, groups: np.ndarray) -> int:
        patients_per_class = pd.Series(groups).groupby(y).nunique()
        if len(patients_per_class) < 2:
            raise ValueError("inner cross-validation needs both classes among the training patients")
        feasible = int(min(self.n_splits, patients_per_class.min()))
        if feasible < 2:
            raise ValueError(
                f"inner cross-validation needs at least 2 patients of each class; have {patients_per_class.to_dict()}"
            )
        return feasible

    def split(self, X, y=None, groups=None):
        """Yield (train, test) index arrays with no patient on both sides.

        Args:
            X: table whose index holds the patient of each row (or an array with ``groups``).
            y: class labels, for stratification.
            groups: optional explicit patient groups, overriding ``X.index``.
        """
        if y is None:
            raise ValueError("PatientGroupKFold needs y to stratify")
        labels = np.asarray(y)
        row_groups = patient_groups(X, groups)
        n_splits = self._feasible_splits(labels, row_groups)
        random_state = self.random_state if self.shuffle else None
        if not isinstance(random_state, (int, type(None))):  # a RandomState object: its state moves on
            splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=self.shuffle, random_state=random_state)
            yield from splitter.split(np.zeros(len(labels)), labels, row_groups)
            return
        for train, test in _stratified_group_splits(n_splits, self.shuffle, random_state,
                                                    tuple(labels.tolist()), tuple(row_groups.tolist())):
            yield train.copy(), test.copy()

    def _iter_test_indices(self, X=None, y=None, groups=None):  # pragma: no cover - split is overridden
        for _, test in self.split(X, y, groups):
            yield test


@lru_cache(maxsize=512)
def _stratified_group_splits(n_splits: int, shuffle: bool, random_state: int | None, labels: tuple,
                             groups: tuple) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    # A grid asks for the same split of the same rows many times over (every configuration and
    # fusion behind one training fold); with a fixed seed it is the same split, computed once.
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=shuffle, random_state=random_state)
    return tuple(splitter.split(np.zeros(len(labels)), np.asarray(labels), np.asarray(groups, dtype=object)))

"""What every fusion estimator shares: table checks, block presence, inner out-of-fold probabilities."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import cross_val_predict
from sklearn.utils.validation import check_is_fitted

from dlradiomics.models.blocks import blocks_of
from dlradiomics.models.inner_cv import PatientGroupKFold


class MissingBlockWarning(UserWarning):
    """Some rows lack a whole feature block (a modality or feature kind); names the patients."""


def check_model_table(X, estimator_name: str) -> dict[str, list[str]]:
    """Check that X is a modelling table and return its blocks.

    Args:
        X: DataFrame with ``"{block}__{feature}"`` columns and ``patient_id`` index.
        estimator_name: named in the error message.

    Returns:
        Mapping block -> columns.

    Raises:
        TypeError: when X is not a DataFrame (the blocks and patients live in its labels).
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"{estimator_name} needs a pandas DataFrame whose columns are '{{block}}__{{feature}}' and whose "
            f"index is patient_id (see dlradiomics.models.build_model_table), got {type(X).__name__}"
        )
    if X.shape[1] == 0:
        raise ValueError(f"{estimator_name}: the modelling table has no feature columns")
    blocks = blocks_of(X.columns)
    non_numeric = [column for column in X.columns if not pd.api.types.is_numeric_dtype(X[column])]
    if non_numeric:
        raise ValueError(f"{estimator_name}: feature column(s) {non_numeric[:3]} are not numeric")
    infinite = np.isinf(X.to_numpy(dtype=float))
    if infinite.any():
        row, column = np.argwhere(infinite)[0]
        raise ValueError(
            f"{estimator_name}: patient {X.index[row]} has an infinite value in {X.columns[column]!r} "
            f"({int(infinite.sum())} infinite value(s) in all); fix the feature extraction or set them to NaN"
        )
    return blocks


def check_binary_target(y, estimator_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (classes, y as an array); fusion is binary (benign 0 / malignant 1)."""
    labels = np.asarray(y)
    classes = np.unique(labels)
    if len(classes) != 2:
        raise ValueError(f"{estimator_name} needs two classes in y, got {classes.tolist()}")
    return classes, labels


def block_presence(X: pd.DataFrame, blocks: dict[str, list[str]]) -> pd.DataFrame:
    """Boolean table rows x blocks: True where the row has at least one value of that block."""
    return pd.DataFrame(
        {block: X[columns].notna().any(axis=1).to_numpy() for block, columns in blocks.items()},
        index=X.index,
    )


def describe_missing(presence: pd.DataFrame, rows: np.ndarray, limit: int = 10) -> str:
    """'patient P1 lacks US.deep; patient P7 lacks MG.radiomic, MG.deep' for the flagged rows."""
    parts = []
    for position in np.flatnonzero(rows)[:limit]:
        missing = presence.columns[~presence.iloc[position].to_numpy()].tolist()
        parts.append(f"patient {presence.index[position]} lacks {', '.join(missing)}")
    more = int(rows.sum()) - limit
    return "; ".join(parts) + (f"; and {more} more row(s)" if more > 0 else "")


def out_of_fold_proba(model, X: pd.DataFrame, y: np.ndarray, inner_cv: int, random_state: int | None) -> np.ndarray:
    """Probability of the positive class for every row, each from a model that never saw the row's patient."""
    splitter = PatientGroupKFold(inner_cv, random_state=random_state)
    return cross_val_predict(model, X, y, cv=splitter, method="predict_proba")[:, 1]


class FusionClassifier(ClassifierMixin, BaseEstimator):
    """Base of the fusion estimators: binary, DataFrame in, NaN probability where no model applies."""

    def _check_fitted_table(self, X) -> pd.DataFrame:
        check_is_fitted(self, "classes_")
        check_model_table(X, type(self).__name__)
        missing = [column for column in self.feature_names_in_ if column not in X.columns]
        if missing:
            raise ValueError(f"{type(self).__name__}: X lacks {len(missing)} column(s) seen in fit, e.g. {missing[:3]}")
        return X[list(self.feature_names_in_)]

    def _remember_input(self, X: pd.DataFrame, y) -> tuple[dict[str, list[str]], np.ndarray]:
        blocks = check_model_table(X, type(self).__name__)
        self.classes_, labels = check_binary_target(y, type(self).__name__)
        if len(labels) != len(X):
            raise ValueError(f"{type(self).__name__}: X has {len(X)} rows but y has {len(labels)}")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.blocks_ = list(blocks)
        return blocks, labels

    def missing_blocks(self, X: pd.DataFrame) -> pd.Series:
        """The blocks each row lacks (empty list when complete), indexed like X.

        Args:
            X: modelling table with the columns seen in fit.
        """
        X = self._check_fitted_table(X)
        presence = block_presence(X, blocks_of(X.columns))
        return pd.Series(
            [presence.columns[~row].tolist() for row in presence.to_numpy()], index=X.index, name="missing_blocks"
        )

    @staticmethod
    def _warn_unpredictable(presence: pd.DataFrame, rows: np.ndarray, reason: str) -> None:
        if rows.any():
            warnings.warn(
                f"{int(rows.sum())} row(s) get a NaN probability ({reason}): {describe_missing(presence, rows)}",
                MissingBlockWarning,
                stacklevel=3,
            )

    @staticmethod
    def _two_column_proba(positive: np.ndarray) -> np.ndarray:
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X) -> np.ndarray:
        """Class with the higher probability; -1 for rows without a prediction (NaN probability).

        Args:
            X: modelling table with the columns seen in fit.
        """
        proba = self.predict_proba(X)
        labels = self.classes_[np.argmax(np.nan_to_num(proba, nan=-1.0), axis=1)].astype(np.int64)
        labels[np.isnan(proba[:, 1])] = -1
        return labels

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

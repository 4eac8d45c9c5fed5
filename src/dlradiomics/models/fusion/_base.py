"""What every fusion estimator shares: input checks, blocks, patient groups, block presence, inner out-of-fold probabilities.

A fusion estimator sees its input as a *modelling table*: a DataFrame whose columns are named
``"{block}__{feature}"`` and whose index holds the patient of each row. It builds that table
itself in ``fit`` from whatever it is given (see :meth:`FusionClassifier._training_table`), so
numpy arrays work as well as modelling tables, and every inner step (the block pipelines, the
LASSO's and the search's inner folds, ``cross_val_predict``) reads the patient groups from the
table's index.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import cross_val_predict
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from dlradiomics.models.blocks import BLOCK_SEPARATOR, blocks_of
from dlradiomics.models.clinical import CLINICAL_BLOCK
from dlradiomics.models.inner_cv import PatientGroupKFold, patient_groups
from dlradiomics.models.selection import SelectionStep
from dlradiomics.models.table_values import plain_float_column_names

# The one block of a table whose columns carry no block names (an array, or plain column names).
SINGLE_BLOCK = "X"
PATIENT_INDEX = "patient_id"

BlockSpec = Mapping[str, Sequence[str] | Sequence[int]] | None
# Selection steps as `make_pipeline` takes them: typed steps, or their text form ("pca:32").
Selection = SelectionStep | str | Sequence[SelectionStep | str] | None


class MissingBlockWarning(UserWarning):
    """Some rows lack a whole feature block (a modality or feature kind); names the patients."""


def resolve_blocks(blocks: BlockSpec, feature_names: np.ndarray | None, n_features: int, estimator_name: str) -> dict[str, list[int]]:
    """Column positions of each block.

    Args:
        blocks: None to read the blocks from ``"{block}__{feature}"`` column names (a table
            whose names carry no separator at all, or an array, is one block named ``"X"``), or a
            mapping block -> column names or column positions covering every column exactly once.
        feature_names: the input's column names, or None for an array.
        n_features: number of input columns.
        estimator_name: named in error messages.

    Returns:
        Mapping block -> column positions, in the blocks' order (first appearance, or the mapping's).

    Raises:
        ValueError: on mixed naming, an unknown or repeated column, a column in no block, or a
            block name holding the separator.
    """
    if blocks is None:
        if feature_names is None or not any(BLOCK_SEPARATOR in str(name) for name in feature_names):
            return {SINGLE_BLOCK: list(range(n_features))}
        position = {str(name): index for index, name in enumerate(feature_names)}
        return {block: [position[column] for column in columns] for block, columns in blocks_of(feature_names).items()}
    if not isinstance(blocks, Mapping) or not blocks:
        raise ValueError(f"{estimator_name}: blocks must be None or a non-empty mapping block -> columns, got {blocks!r}")
    names = None if feature_names is None else [str(name) for name in feature_names]
    owner: dict[int, str] = {}
    resolved: dict[str, list[int]] = {}
    for block, members in blocks.items():
        if not isinstance(block, str) or not block or BLOCK_SEPARATOR in block:
            raise ValueError(f"{estimator_name}: block name {block!r} must be a non-empty string without {BLOCK_SEPARATOR!r}")
        if isinstance(members, (str, bytes)) or not len(members):
            raise ValueError(f"{estimator_name}: block {block!r} must list its columns (names or positions), got {members!r}")
        positions = []
        for member in members:
            if isinstance(member, (int, np.integer)) and not isinstance(member, bool):
                if not 0 <= member < n_features:
                    raise ValueError(f"{estimator_name}: block {block!r} names column position {member}, but X has {n_features} columns")
                positions.append(int(member))
            elif names is not None and str(member) in names:
                positions.append(names.index(str(member)))
            else:
                where = "X has no column names (pass positions)" if names is None else "not a column of X"
                raise ValueError(f"{estimator_name}: block {block!r} names column {member!r}: {where}")
        for position in positions:
            if position in owner:
                raise ValueError(
                    f"{estimator_name}: column {_column_label(position, names)} is in blocks {owner[position]!r} and {block!r}"
                )
            owner[position] = block
        resolved[block] = positions
    unassigned = [position for position in range(n_features) if position not in owner]
    if unassigned:
        labels = [_column_label(position, names) for position in unassigned[:5]]
        raise ValueError(f"{estimator_name}: {len(unassigned)} column(s) belong to no block, e.g. {labels}")
    return resolved


def _column_label(position: int, names: list[str] | None) -> str:
    return repr(names[position]) if names is not None else f"at position {position}"


def block_presence(X: pd.DataFrame, blocks: dict[str, list[str]]) -> pd.DataFrame:
    """Boolean table rows x blocks: True where the row has at least one value of that block.

    The clinical block is always present: its missing values are imputed and flagged by its
    encoder (`dlradiomics.models.clinical.ClinicalEncoder`), never a reason to drop a patient.
    """
    # One pass over the values with positional columns: selecting a 1,280-column block by name
    # from a pandas table costs more than testing its values.
    present = X.notna().to_numpy()

    def positions(columns: list[str]) -> np.ndarray:
        found = X.columns.get_indexer_for(columns)
        if (found < 0).any():
            raise KeyError(f"columns {[c for c, p in zip(columns, found) if p < 0][:5]} are not in the table")
        return found

    return pd.DataFrame(
        {block: (np.ones(len(X), dtype=bool) if block == CLINICAL_BLOCK else present[:, positions(columns)].any(axis=1))
         for block, columns in blocks.items()},
        index=X.index,
    )


def describe_missing(presence: pd.DataFrame, rows: np.ndarray, limit: int = 10) -> str:
    """'patient P1 lacks US.deep; patient P7 lacks MG.radiomic, MG.deep' for the flagged rows."""
    noun = "patient" if presence.index.name == PATIENT_INDEX else "row"
    parts = []
    for position in np.flatnonzero(rows)[:limit]:
        missing = presence.columns[~presence.iloc[position].to_numpy()].tolist()
        parts.append(f"{noun} {presence.index[position]} lacks {', '.join(missing)}")
    more = int(rows.sum()) - limit
    return "; ".join(parts) + (f"; and {more} more row(s)" if more > 0 else "")


def fit_block_reducers(table: pd.DataFrame, blocks: dict[str, list[str]], reduced: Sequence[str], make_reducer,
                       labels: np.ndarray) -> dict[str, BaseEstimator]:
    """Fit one reducer per named block, each on the rows that have the block.

    Args:
        table: modelling table of the training rows.
        blocks: block -> columns of ``table``.
        reduced: the blocks to reduce.
        make_reducer: ``make_reducer()`` returns an unfitted transformer (e.g. scale -> PCA).
        labels: training labels (for supervised reducers such as selectors).

    Returns:
        Fitted reducer per reduced block.
    """
    presence = block_presence(table, blocks)
    reducers = {}
    for block in reduced:
        present = presence[block].to_numpy()
        reducers[block] = make_reducer().fit(table.loc[present, blocks[block]], labels[present])
    return reducers


def apply_block_reducers(table: pd.DataFrame, blocks: dict[str, list[str]],
                         reducers: Mapping[str, BaseEstimator]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Replace each reduced block's columns by its reducer's output; other blocks pass through.

    Output columns are named ``"{block}__{name}"`` (e.g. ``US.deep__pca0``); a row lacking the
    block gets NaN in its reduced columns.

    Returns:
        ``(table, blocks)`` after the reduction, blocks in the same order.
    """
    if not reducers:
        return table, blocks
    presence = block_presence(table, blocks)
    parts, reduced_blocks = [], {}
    for block, columns in blocks.items():
        if block not in reducers:
            parts.append(table[columns])
            reduced_blocks[block] = list(columns)
            continue
        reducer = reducers[block]
        names = [
            str(name) if str(name).startswith(f"{block}{BLOCK_SEPARATOR}") else f"{block}{BLOCK_SEPARATOR}{name}"
            for name in reducer.get_feature_names_out()
        ]
        values = np.full((len(table), len(names)), np.nan)
        present = presence[block].to_numpy()
        if present.any():
            values[present] = np.asarray(reducer.transform(table.loc[present, columns]), dtype=float)
        parts.append(pd.DataFrame(values, index=table.index, columns=names))
        reduced_blocks[block] = names
    return pd.concat(parts, axis=1), reduced_blocks


def out_of_fold_proba(model, X: pd.DataFrame, y: np.ndarray, inner_cv: int, random_state: int | None) -> np.ndarray:
    """Probability of the positive class for every row, each from a model that never saw the row's patient."""
    splitter = PatientGroupKFold(inner_cv, random_state=random_state)
    return cross_val_predict(model, X, y, cv=splitter, method="predict_proba")[:, 1]


class FusionClassifier(ClassifierMixin, BaseEstimator):
    """Base of the fusion estimators: binary, any array or table in, NaN probability where no model applies.

    Subclasses call :meth:`_training_table` in ``fit`` and :meth:`_prediction_table` before
    predicting; both return the modelling table (``"{block}__{feature}"`` columns) the fusion
    works on. Inner models are trained on the labels encoded 0 / 1 (``classes_[1]`` is 1), so any
    two labels work, strings included.
    """

    def _training_table(self, X, y, groups) -> tuple[pd.DataFrame, np.ndarray, dict[str, list[str]]]:
        """Validate the training input; set ``classes_``, ``n_features_in_``, the blocks and the table columns.

        Returns:
            ``(table, encoded labels 0/1, blocks)`` with the table indexed by patient group.
        """
        name = type(self).__name__
        _check_numeric_columns(X, name)
        original_index = X.index if isinstance(X, pd.DataFrame) else None
        names = plain_float_column_names(X)
        if names is None:
            values, labels = validate_data(self, X, y, dtype=np.float64, ensure_all_finite=False)
        else:
            # the table's values, its names recorded as scikit-learn records them (see table_values)
            values, labels = validate_data(self, X.to_numpy(dtype=np.float64), y, dtype=np.float64,
                                           ensure_all_finite=False)
            self.feature_names_in_ = names
        check_classification_targets(labels)
        classes = np.unique(labels)
        if len(classes) > 2:
            raise ValueError(
                f"Only binary classification is supported. The type of the target is multiclass: "
                f"{name} needs two classes in y, got {len(classes)}: {classes.tolist()[:10]}"
            )
        if len(classes) < 2:
            raise ValueError(f"{name} needs two classes in y, got one class: {classes.tolist()}")
        row_groups = patient_groups(values if original_index is None else X, groups)
        if len(row_groups) != len(values):
            raise ValueError(f"{name}: groups has {len(row_groups)} entries but X has {len(values)} rows")
        index = pd.Index(row_groups, name=PATIENT_INDEX)
        _check_no_infinity(values, index, getattr(self, "feature_names_in_", None), name)

        feature_names = getattr(self, "feature_names_in_", None)
        positions = resolve_blocks(self.blocks, feature_names, values.shape[1], name)
        table_columns = [""] * values.shape[1]
        for block, block_positions in positions.items():
            for position in block_positions:
                feature = str(feature_names[position]) if feature_names is not None else f"f{position}"
                already_named = feature.startswith(f"{block}{BLOCK_SEPARATOR}")
                table_columns[position] = feature if already_named else f"{block}{BLOCK_SEPARATOR}{feature}"
        self.classes_ = classes
        self.table_columns_ = np.asarray(table_columns, dtype=object)
        self.block_columns_ = {block: [table_columns[p] for p in block_positions] for block, block_positions in positions.items()}
        self.blocks_ = list(self.block_columns_)
        table = pd.DataFrame(values, index=index, columns=table_columns)
        return table, (labels == classes[1]).astype(np.int64), self.block_columns_

    def _prediction_table(self, X) -> pd.DataFrame:
        """Check a fitted estimator and X (same columns as in fit); return X as the modelling table."""
        check_is_fitted(self, "classes_")
        name = type(self).__name__
        _check_numeric_columns(X, name)
        index = X.index if isinstance(X, pd.DataFrame) else None
        names = plain_float_column_names(X)
        fitted_names = getattr(self, "feature_names_in_", None)
        if names is not None and fitted_names is not None and np.array_equal(names, fitted_names):
            # the fitted columns, in order (so their number too): only the values need checking
            values = check_array(X.to_numpy(dtype=np.float64), dtype=np.float64, ensure_all_finite=False)
        else:
            values = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        if index is None:
            index = pd.RangeIndex(values.shape[0], name="row")
        _check_no_infinity(values, index, getattr(self, "feature_names_in_", None), name)
        return pd.DataFrame(values, index=index, columns=list(self.table_columns_))

    def missing_blocks(self, X) -> pd.Series:
        """The blocks each row lacks (empty list when complete), indexed like X.

        Args:
            X: table or array with the columns seen in fit.
        """
        table = self._prediction_table(X)
        presence = block_presence(table, self.block_columns_)
        return pd.Series(
            [presence.columns[~row].tolist() for row in presence.to_numpy()], index=table.index, name="missing_blocks"
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
        """Class with the higher probability, one of ``classes_``.

        A row without a prediction (NaN probability: it lacks the blocks its model needs) gets
        NaN when the classes are numbers (the array is then float) and None otherwise (object
        array), as pandas does for a missing value; ``predict_proba`` warns naming those rows.

        Args:
            X: table or array with the columns seen in fit.
        """
        proba = self.predict_proba(X)
        unscored = np.isnan(proba[:, 1])
        labels = self.classes_[np.argmax(np.nan_to_num(proba, nan=-1.0), axis=1)]
        if unscored.any():
            numeric = np.issubdtype(self.classes_.dtype, np.number)
            labels = labels.astype(np.float64 if numeric else object)
            labels[unscored] = np.nan if numeric else None
        return labels

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags


def _check_numeric_columns(X, estimator_name: str) -> None:
    if isinstance(X, pd.DataFrame):
        # One test per distinct dtype, not per column (a deep block has 1,280 float columns).
        dtypes = X.dtypes
        if all(pd.api.types.is_numeric_dtype(dtype) for dtype in dtypes.unique()):
            return
        non_numeric = dtypes.index[[not pd.api.types.is_numeric_dtype(dtype) for dtype in dtypes]].tolist()
        if non_numeric:
            raise ValueError(f"{estimator_name}: feature column(s) {non_numeric[:3]} are not numeric")


def _check_no_infinity(values: np.ndarray, index: pd.Index, feature_names, estimator_name: str) -> None:
    infinite = np.isinf(values)
    if infinite.any():
        row, column = np.argwhere(infinite)[0]
        noun = "patient" if index.name == PATIENT_INDEX else "row"
        column_name = repr(str(feature_names[column])) if feature_names is not None else f"column {column}"
        raise ValueError(
            f"{estimator_name}: {noun} {index[row]} has an infinite value in {column_name} "
            f"({int(infinite.sum())} infinite value(s) in all); fix the feature extraction or set them to NaN"
        )

"""The clinical block: per-patient variables (BI-RADS category, age, ...) as one more feature block.

In a modelling table the clinical variables form the block ``clinical`` (columns
``clinical__birads``, ``clinical__age``), one block whatever the modalities, since they describe
the patient, not an image. Numeric variables hold their values; a categorical variable holds the
code of its category, the category's position in the study's list of categories (so a text
category such as a device name fits a numeric table).

`ClinicalEncoder` is the block's preparation, fitted inside each training fold like every other
step: numeric variables get median imputation plus a missing-value indicator, categorical ones
most-frequent imputation plus an indicator, then one-hot columns of the categories the training
rows hold. A category the training rows never held (or a code outside the list) gets no column:
its row reads zero in every one-hot column of that variable, as for an unseen level. Columns of
other blocks pass through untouched, so the encoder can sit at the front of any pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted, validate_data

CLINICAL_KIND = "clinical"
CLINICAL_BLOCK = "clinical"
CLINICAL_PREFIX = f"{CLINICAL_BLOCK}__"
# One-hot columns are named "clinical__birads=4"; indicators "clinical__age=missing".
CATEGORY_SEPARATOR = "="
MISSING_SUFFIX = "missing"

Categories = tuple[tuple[str, tuple[str, ...]], ...]
"""Categorical variables with their categories in code order: ``(("birads", ("2", "3", "4", "5")),)``."""


@dataclass(frozen=True)
class ClinicalEncodingStep:
    """Prepare the clinical block (imputation, missing indicators, one-hot) inside each training fold.

    It goes first in a pipeline, before the general imputation, so that a missing clinical value
    is seen (and flagged to the model) before anything fills it in.

    Args:
        categories: the categorical variables and their categories in code order; every other
            clinical column is numeric.
    """

    categories: Categories = ()
    name: ClassVar[str] = "clinical"
    needs_scaling: ClassVar[bool] = False
    # Placed before the pipeline's imputation (see `dlradiomics.models.make_pipeline`).
    prepares: ClassVar[bool] = True

    def build(self, random_state: int | None) -> BaseEstimator:
        """The unfitted encoder."""
        return ClinicalEncoder(categories=self.categories)


def clinical_columns(columns: Sequence[str]) -> list[str]:
    """The columns of a modelling table that belong to the clinical block."""
    return [str(column) for column in columns if str(column).startswith(CLINICAL_PREFIX)]


class ClinicalEncoder(TransformerMixin, BaseEstimator):
    """Impute, flag and one-hot encode the clinical columns of a modelling table; pass the others through.

    Args:
        categories: the categorical variables (names without the block prefix) with their
            categories in code order; a clinical column not named here is numeric.

    Attributes:
        numeric_columns_: numeric clinical columns seen in fit.
        categorical_columns_: categorical clinical columns seen in fit.
        passthrough_columns_: columns of other blocks, passed through.
        numeric_imputer_: median imputer with missing indicators (None without numeric columns).
        categorical_imputer_: most-frequent imputer with missing indicators (None without categorical columns).
        one_hot_: one-hot encoder of the categorical codes the training rows hold.
        feature_names_out_: output columns, in order.
    """

    def __init__(self, categories: Categories = ()):
        self.categories = categories

    def fit(self, X, y=None):
        """Learn medians, most frequent categories, which columns had missing values, and the categories present.

        Args:
            X: modelling table (DataFrame with ``"{block}__{feature}"`` columns); an array has no
                clinical columns and passes through.
            y: ignored.

        Returns:
            self
        """
        values = validate_data(self, X, reset=True, ensure_all_finite="allow-nan", dtype=np.float64)
        names = [str(name) for name in getattr(self, "feature_names_in_", [f"x{k}" for k in range(values.shape[1])])]
        categorical_names = {f"{CLINICAL_PREFIX}{name}" for name, _ in self.categories}
        clinical = clinical_columns(names)
        self.categorical_columns_ = [column for column in clinical if column in categorical_names]
        self.numeric_columns_ = [column for column in clinical if column not in categorical_names]
        self.passthrough_columns_ = [name for name in names if name not in set(clinical)]
        self.numeric_imputer_ = None
        if self.numeric_columns_:
            # keep_empty_features: a variable no training row has still yields its column (filled
            # with 0), so the output columns never depend on which values a fold happens to lack.
            self.numeric_imputer_ = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
            self.numeric_imputer_.fit(self._columns(values, self.numeric_columns_))
        self.categorical_imputer_ = None
        self.one_hot_ = None
        if self.categorical_columns_:
            codes = self._columns(values, self.categorical_columns_)
            self.categorical_imputer_ = SimpleImputer(strategy="most_frequent", add_indicator=True,
                                                      keep_empty_features=True).fit(codes)
            imputed = self.categorical_imputer_.transform(codes)[:, : len(self.categorical_columns_)]
            self.one_hot_ = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
            self.one_hot_.fit(imputed)
        self.feature_names_out_ = np.asarray(self._output_names(), dtype=object)
        return self

    def _columns(self, values: np.ndarray, names: list[str]) -> np.ndarray:
        positions = {name: k for k, name in enumerate(self._input_names())}
        return values[:, [positions[name] for name in names]]

    def _input_names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        return [str(name) for name in names] if names is not None else [f"x{k}" for k in range(self.n_features_in_)]

    def _output_names(self) -> list[str]:
        names = list(self.passthrough_columns_)
        if self.numeric_imputer_ is not None:
            names += self.numeric_columns_
            names += [f"{self.numeric_columns_[k]}{CATEGORY_SEPARATOR}{MISSING_SUFFIX}"
                      for k in self.numeric_imputer_.indicator_.features_]
        if self.one_hot_ is not None:
            labels = {f"{CLINICAL_PREFIX}{name}": values for name, values in self.categories}
            for column, codes in zip(self.categorical_columns_, self.one_hot_.categories_):
                names += [f"{column}{CATEGORY_SEPARATOR}{_category_label(labels[column], code)}" for code in codes]
            names += [f"{self.categorical_columns_[k]}{CATEGORY_SEPARATOR}{MISSING_SUFFIX}"
                      for k in self.categorical_imputer_.indicator_.features_]
        return names

    def transform(self, X) -> np.ndarray:
        """The other blocks' columns unchanged, then the encoded clinical columns.

        In a pipeline with pandas output (`dlradiomics.models.make_pipeline`), the rows keep X's
        index and the columns the names `get_feature_names_out` gives.

        Args:
            X: modelling table with the columns seen in fit, in the same order.

        Returns:
            The encoded values.
        """
        check_is_fitted(self, "feature_names_out_")
        values = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        parts = [self._columns(values, self.passthrough_columns_)]
        if self.numeric_imputer_ is not None:
            parts.append(self.numeric_imputer_.transform(self._columns(values, self.numeric_columns_)))
        if self.one_hot_ is not None:
            imputed = self.categorical_imputer_.transform(self._columns(values, self.categorical_columns_))
            n_categorical = len(self.categorical_columns_)
            parts.append(self.one_hot_.transform(imputed[:, :n_categorical]))
            parts.append(imputed[:, n_categorical:])
        return np.hstack([part.reshape(len(values), -1) for part in parts])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


def _category_label(categories: Sequence[str], code: float) -> str:
    """The category a code stands for (the code itself when it is outside the list)."""
    if float(code).is_integer() and 0 <= int(code) < len(categories):
        return str(categories[int(code)])
    return f"code {code:g}"

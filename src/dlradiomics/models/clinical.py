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
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted

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

    def fit(self, X: pd.DataFrame, y=None):
        """Learn medians, most frequent categories, which columns had missing values, and the categories present.

        Args:
            X: modelling table (DataFrame with ``"{block}__{feature}"`` columns).
            y: ignored.

        Returns:
            self
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"ClinicalEncoder needs a DataFrame with named columns, got {type(X).__name__}")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        categorical_names = {f"{CLINICAL_PREFIX}{name}" for name, _ in self.categories}
        clinical = clinical_columns(X.columns)
        self.categorical_columns_ = [column for column in clinical if column in categorical_names]
        self.numeric_columns_ = [column for column in clinical if column not in categorical_names]
        self.passthrough_columns_ = [str(column) for column in X.columns if str(column) not in set(clinical)]
        self.numeric_imputer_ = None
        if self.numeric_columns_:
            # keep_empty_features: a variable no training row has still yields its column (filled
            # with 0), so the output columns never depend on which values a fold happens to lack.
            self.numeric_imputer_ = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
            self.numeric_imputer_.fit(X[self.numeric_columns_].to_numpy(dtype=float))
        self.categorical_imputer_ = None
        self.one_hot_ = None
        if self.categorical_columns_:
            codes = X[self.categorical_columns_].to_numpy(dtype=float)
            self.categorical_imputer_ = SimpleImputer(strategy="most_frequent", add_indicator=True,
                                                      keep_empty_features=True).fit(codes)
            imputed = self.categorical_imputer_.transform(codes)[:, : len(self.categorical_columns_)]
            self.one_hot_ = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
            self.one_hot_.fit(imputed)
        self.feature_names_out_ = np.asarray(self._output_names(), dtype=object)
        return self

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

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """The other blocks' columns unchanged, then the encoded clinical columns (same index as X).

        Args:
            X: modelling table with the columns seen in fit.

        Returns:
            A DataFrame with the columns `get_feature_names_out` names.
        """
        check_is_fitted(self, "feature_names_out_")
        missing = [str(column) for column in self.feature_names_in_ if column not in X.columns]
        if missing:
            raise ValueError(f"ClinicalEncoder: X lacks {len(missing)} column(s) seen in fit, e.g. {missing[:3]}")
        parts = [X[self.passthrough_columns_].to_numpy(dtype=float)]
        if self.numeric_imputer_ is not None:
            parts.append(self.numeric_imputer_.transform(X[self.numeric_columns_].to_numpy(dtype=float)))
        if self.one_hot_ is not None:
            imputed = self.categorical_imputer_.transform(X[self.categorical_columns_].to_numpy(dtype=float))
            n_categorical = len(self.categorical_columns_)
            parts.append(self.one_hot_.transform(imputed[:, :n_categorical]))
            parts.append(imputed[:, n_categorical:])
        values = np.hstack([part.reshape(len(X), -1) for part in parts])
        return pd.DataFrame(values, index=X.index, columns=list(self.feature_names_out_))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()


def _category_label(categories: Sequence[str], code: float) -> str:
    """The category a code stands for (the code itself when it is outside the list)."""
    if float(code).is_integer() and 0 <= int(code) < len(categories):
        return str(categories[int(code)])
    return f"code {code:g}"

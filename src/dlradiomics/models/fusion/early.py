"""Early fusion: concatenate the feature blocks, then select and classify."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from dlradiomics.models.blocks import blocks_of
from dlradiomics.models.classifiers import DEFAULT_SELECTION, make_pipeline
from dlradiomics.models.fusion._base import FusionClassifier, MissingBlockWarning, block_presence, describe_missing


class EarlyFusion(FusionClassifier):
    """Concatenate all blocks of a modelling table and fit one selection + classifier pipeline.

    Early fusion needs every block of a row: rows lacking a whole block are dropped in ``fit``
    (listed in ``dropped_patients_`` and announced by a :class:`MissingBlockWarning`), and get a
    NaN probability in ``predict_proba`` (with a warning naming the patients and blocks).
    Scattered NaN inside a present block are imputed by the training median.

    Args:
        classifier: a name from ``CLASSIFIERS`` or an unfitted scikit-learn classifier.
        selection: selector specs (see :func:`dlradiomics.models.make_pipeline`).
        search: hyper-parameter search in inner CV grouped by patient.
        random_state: seed of everything fitted.

    Attributes:
        pipeline_: the fitted pipeline.
        dropped_patients_: patients left out of fit for a missing block.
        blocks_: block names in column order.
    """

    def __init__(
        self,
        classifier: str | BaseEstimator = "logistic",
        selection: str | Sequence[str] | None = DEFAULT_SELECTION,
        search: bool = False,
        random_state: int | None = 0,
    ):
        self.classifier = classifier
        self.selection = selection
        self.search = search
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y):
        """Fit on the rows that have every block.

        Args:
            X: modelling table (``patient_id`` index).
            y: binary labels, one per row.

        Returns:
            self
        """
        blocks, labels = self._remember_input(X, y)
        presence = block_presence(X, blocks)
        incomplete = ~presence.all(axis=1).to_numpy()
        self.dropped_patients_ = sorted({str(patient) for patient in X.index[incomplete]})
        if incomplete.any():
            warnings.warn(
                f"EarlyFusion dropped {int(incomplete.sum())} training row(s) of {len(self.dropped_patients_)} "
                f"patient(s) lacking a whole block: {describe_missing(presence, incomplete)}",
                MissingBlockWarning,
                stacklevel=2,
            )
        if incomplete.all():
            raise ValueError("EarlyFusion: no training row has every block; use a late fusion (ensemble or stacking)")
        kept_labels = labels[~incomplete]
        if len(np.unique(kept_labels)) < 2:
            raise ValueError("EarlyFusion: the rows with every block hold a single class")
        self.pipeline_ = make_pipeline(
            self.classifier, self.selection, random_state=self.random_state, search=self.search
        ).fit(X.loc[~incomplete], kept_labels)
        return self

    def block_probabilities(self, X: pd.DataFrame) -> pd.DataFrame:
        """Probability of malignancy from the single fused model, column ``"early"`` (NaN where a block is missing).

        Args:
            X: modelling table with the columns seen in fit.
        """
        X = self._check_fitted_table(X)
        presence = block_presence(X, blocks_of(X.columns))
        complete = presence.all(axis=1).to_numpy()
        positive = np.full(len(X), np.nan)
        if complete.any():
            positive[complete] = self.pipeline_.predict_proba(X.loc[complete])[:, 1]
        self._warn_unpredictable(presence, ~complete, "early fusion needs every block")
        return pd.DataFrame({"early": positive}, index=X.index)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities (n_rows, 2); NaN rows lack a block.

        Args:
            X: modelling table with the columns seen in fit.
        """
        return self._two_column_proba(self.block_probabilities(X)["early"].to_numpy())

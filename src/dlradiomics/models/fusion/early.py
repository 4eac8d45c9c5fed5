"""Early fusion: concatenate the feature blocks (each optionally reduced on its own), then select and classify."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from dlradiomics.models.classifiers import DEFAULT_SELECTION, make_pipeline, make_preprocessing
from dlradiomics.models.fusion._base import (
    BlockSpec,
    FusionClassifier,
    MissingBlockWarning,
    Selection,
    apply_block_reducers,
    block_presence,
    describe_missing,
    fit_block_reducers,
)


class EarlyFusion(FusionClassifier):
    """Concatenate all blocks and fit one selection + classifier pipeline.

    With ``block_selection`` each block is first reduced on its own (impute -> drop constant
    columns -> scale -> the given steps, fitted on the training rows), so a per-modality step
    stays per modality: deep early fusion of US and MG with ``block_selection=("pca:32",)``
    gives 32 components of each modality (64 columns), not 32 of their concatenation.

    Early fusion needs every block of a row: rows lacking a whole block are dropped in ``fit``
    (listed in ``dropped_patients_`` and announced by a :class:`MissingBlockWarning`), and get a
    NaN probability in ``predict_proba`` (with a warning naming the patients and blocks).
    Scattered NaN inside a present block are imputed by the training median.

    Args:
        classifier: a name from ``CLASSIFIERS`` or an unfitted scikit-learn classifier.
        selection: selector specs applied to the concatenation (see
            :func:`dlradiomics.models.make_pipeline`).
        search: hyper-parameter search in inner CV grouped by patient.
        random_state: seed of everything fitted.
        blocks: None to read the blocks from ``"{block}__{feature}"`` column names (an array, or a
            table without such names, is one block); or a mapping block -> column names or positions.
        block_selection: selector specs applied to each block separately before the
            concatenation (e.g. ``("pca:32",)``); None for none.

    Attributes:
        block_reducers_: per block, the fitted reducer of ``block_selection`` (empty without it).
        pipeline_: the fitted pipeline on the concatenated (reduced) blocks.
        dropped_patients_: patients left out of fit for a missing block.
        blocks_: block names; ``block_columns_``: each block's columns in the modelling table.
        classes_: the two class labels; ``n_features_in_``, ``feature_names_in_``: the input seen in fit.
    """

    def __init__(
        self,
        classifier: str | BaseEstimator = "logistic",
        selection: Selection = DEFAULT_SELECTION,
        search: bool = False,
        random_state: int | None = 0,
        blocks: BlockSpec = None,
        block_selection: Selection = None,
    ):
        self.classifier = classifier
        self.selection = selection
        self.search = search
        self.random_state = random_state
        self.blocks = blocks
        self.block_selection = block_selection

    def fit(self, X, y, groups=None):
        """Fit on the rows that have every block.

        Args:
            X: modelling table (``patient_id`` index) or array with the columns of ``blocks``.
            y: two class labels, one per row.
            groups: patient of each row, for every inner CV; default ``X.index`` of a table, else
                one per row. Routed by metadata routing after ``set_fit_request(groups=True)``.

        Returns:
            self
        """
        table, labels, blocks = self._training_table(X, y, groups)
        presence = block_presence(table, blocks)
        incomplete = ~presence.all(axis=1).to_numpy()
        self.dropped_patients_ = sorted({str(patient) for patient in table.index[incomplete]})
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
        kept = table.loc[~incomplete]
        self.block_reducers_ = {}
        if self.block_selection is not None:
            self.block_reducers_ = fit_block_reducers(
                kept, blocks, list(blocks),
                lambda: make_preprocessing(self.block_selection, random_state=self.random_state), kept_labels,
            )
        reduced, _ = apply_block_reducers(kept, blocks, self.block_reducers_)
        model = make_pipeline(self.classifier, self.selection, random_state=self.random_state, search=self.search)
        self.pipeline_ = model.fit(reduced, kept_labels)
        return self

    def transform_blocks(self, X) -> pd.DataFrame:
        """The table the classifier pipeline sees: every block after its ``block_selection`` reducer.

        Args:
            X: table or array with the columns seen in fit.
        """
        return apply_block_reducers(self._prediction_table(X), self.block_columns_, self.block_reducers_)[0]

    def block_probabilities(self, X) -> pd.DataFrame:
        """Probability of ``classes_[1]`` from the single fused model, column ``"early"`` (NaN where a block is missing).

        Args:
            X: table or array with the columns seen in fit.
        """
        table = self._prediction_table(X)
        presence = block_presence(table, self.block_columns_)
        complete = presence.all(axis=1).to_numpy()
        positive = np.full(len(table), np.nan)
        if complete.any():
            reduced, _ = apply_block_reducers(table.loc[complete], self.block_columns_, self.block_reducers_)
            positive[complete] = self.pipeline_.predict_proba(reduced)[:, 1]
        self._warn_unpredictable(presence, ~complete, "early fusion needs every block")
        return pd.DataFrame({"early": positive}, index=table.index)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (n_rows, 2) in the order of ``classes_``; NaN rows lack a block.

        Args:
            X: table or array with the columns seen in fit.
        """
        return self._two_column_proba(self.block_probabilities(X)["early"].to_numpy())

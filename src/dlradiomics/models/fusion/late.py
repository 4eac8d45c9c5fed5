"""Late fusion: one model per feature block, combined by weighted averaging or by a meta-learner.

A patient lacking a block (a modality not imaged, an extraction that failed) is predicted from
the blocks the patient has; each block model is trained on the rows that have its block.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from scipy.special import softmax
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, roc_auc_score

from dlradiomics.models.classifiers import DEFAULT_SELECTION, make_pipeline
from dlradiomics.models.fusion._base import BlockSpec, FusionClassifier, Selection, block_presence, out_of_fold_proba

WEIGHTINGS = ("accuracy", "auc")


class _PerBlockFusion(FusionClassifier):
    """Fits one pipeline per block on that block's rows, with out-of-fold probabilities from inner CV."""

    def _fit_block_models(self, X: pd.DataFrame, labels: np.ndarray, blocks: dict[str, list[str]]) -> pd.DataFrame:
        """Fit ``block_models_``; return the inner-CV out-of-fold probabilities (rows x blocks, NaN where absent)."""
        presence = block_presence(X, blocks)
        out_of_fold = pd.DataFrame(np.nan, index=X.index, columns=list(blocks))
        self.block_models_ = {}
        self.block_prevalence_ = {}
        for block, columns in blocks.items():
            present = presence[block].to_numpy()
            block_labels = labels[present]
            if len(np.unique(block_labels)) < 2:
                raise ValueError(f"{type(self).__name__}: the rows having block {block!r} hold a single class")
            block_table = X.loc[present, columns]
            model = make_pipeline(self.classifier, self.selection, random_state=self.random_state, search=self.search)
            out_of_fold.loc[present, block] = out_of_fold_proba(
                model, block_table, block_labels, self.inner_cv, self.random_state
            )
            self.block_models_[block] = model.fit(block_table, block_labels)
            self.block_prevalence_[block] = float(np.mean(block_labels == 1))
        return out_of_fold

    def block_probabilities(self, X) -> pd.DataFrame:
        """Each block model's probability of ``classes_[1]`` (rows x blocks; NaN where the row lacks the block).

        Args:
            X: table or array with the columns seen in fit.
        """
        table = self._prediction_table(X)
        presence = block_presence(table, self.block_columns_)
        probabilities = pd.DataFrame(np.nan, index=table.index, columns=self.blocks_)
        for block, columns in self.block_columns_.items():
            present = presence[block].to_numpy()
            if present.any():
                probabilities.loc[present, block] = self.block_models_[block].predict_proba(table.loc[present, columns])[:, 1]
        return probabilities


class WeightedEnsembleFusion(_PerBlockFusion):
    """Average the block models' probabilities with weights = softmax of their inner-CV scores.

    The paper's rule: a block's weight is the softmax, over blocks, of its accuracy (threshold
    0.5) on inner cross-validation of the training rows (folds grouped by patient: the routed
    ``groups``, else ``X.index``); ``weighting="auc"`` uses the inner-CV AUC instead. A row lacking some blocks
    is averaged over the blocks it has, with their weights renormalised; a row with none gets NaN.

    Args:
        classifier: a name from ``CLASSIFIERS`` or an unfitted classifier, used for every block.
        selection: selector specs of each block's pipeline.
        weighting: ``"accuracy"`` (paper) or ``"auc"``.
        inner_cv: inner folds for the scores.
        search: hyper-parameter search inside each block pipeline.
        random_state: seed of everything fitted.
        blocks: None to read the blocks from ``"{block}__{feature}"`` column names (an array, or a
            table without such names, is one block); or a mapping block -> column names or positions.

    Attributes:
        block_models_: fitted pipeline per block.
        block_scores_: inner-CV accuracy (or AUC) per block.
        weights_: softmax weights per block (sum to 1).
    """

    def __init__(
        self,
        classifier: str | BaseEstimator = "logistic",
        selection: Selection = DEFAULT_SELECTION,
        weighting: str = "accuracy",
        inner_cv: int = 5,
        search: bool = False,
        random_state: int | None = 0,
        blocks: BlockSpec = None,
    ):
        self.classifier = classifier
        self.selection = selection
        self.weighting = weighting
        self.inner_cv = inner_cv
        self.search = search
        self.random_state = random_state
        self.blocks = blocks

    def fit(self, X, y, groups=None):
        """Fit the block models and their weights on the training rows.

        Args:
            X: modelling table (``patient_id`` index) or array with the columns of ``blocks``.
            y: two class labels, one per row.
            groups: patient of each row, for every inner CV; default ``X.index`` of a table, else
                one per row. Routed by metadata routing after ``set_fit_request(groups=True)``.

        Returns:
            self
        """
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        table, labels, blocks = self._training_table(X, y, groups)
        out_of_fold = self._fit_block_models(table, labels, blocks)
        positive = labels == 1
        scores = {}
        for block in blocks:
            present = out_of_fold[block].notna().to_numpy()
            block_oof = out_of_fold[block].to_numpy()[present]
            if self.weighting == "accuracy":
                scores[block] = accuracy_score(positive[present], block_oof >= 0.5)
            else:
                scores[block] = roc_auc_score(positive[present], block_oof)
        self.block_scores_ = scores
        self.weights_ = dict(zip(blocks, softmax(np.array(list(scores.values()), dtype=float))))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Weighted average of the available block probabilities, shape (n_rows, 2), columns in the order of ``classes_``.

        Args:
            X: table or array with the columns seen in fit.
        """
        probabilities = self.block_probabilities(X)
        weights = np.array([self.weights_[block] for block in probabilities.columns])
        values = probabilities.to_numpy()
        available = ~np.isnan(values)
        weight_sum = (available * weights).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            positive = np.nansum(values * weights, axis=1) / weight_sum
        no_block = weight_sum == 0
        positive[no_block] = np.nan
        self._warn_unpredictable(pd.DataFrame(available, index=probabilities.index, columns=probabilities.columns), no_block, "no block present")
        return self._two_column_proba(positive)


class StackingFusion(_PerBlockFusion):
    """A meta-learner on the block models' out-of-fold probabilities.

    The meta-learner is trained on probabilities each block model gave to rows whose patients it
    had not seen (inner CV grouped by patient), never on in-sample fits, so a block that merely
    memorises its training rows earns no trust. Missing blocks: the block's probability is
    replaced by that block's training prevalence of malignancy, and for every block missing in
    some training row a 0/1 indicator column ``"{block}__missing"`` tells the meta-learner so.
    A row lacking every block gets NaN.

    Args:
        classifier: a name from ``CLASSIFIERS`` or an unfitted classifier, used for every block.
        selection: selector specs of each block's pipeline.
        meta: the meta-learner, a name from ``CLASSIFIERS`` or an unfitted classifier.
        inner_cv: inner folds for the out-of-fold probabilities.
        search: hyper-parameter search inside each block pipeline.
        random_state: seed of everything fitted.
        blocks: None to read the blocks from ``"{block}__{feature}"`` column names (an array, or a
            table without such names, is one block); or a mapping block -> column names or positions.

    Attributes:
        block_models_: fitted pipeline per block (refitted on all its training rows).
        meta_model_: fitted meta-learner pipeline (impute -> scale when needed -> meta).
        meta_feature_names_: columns the meta-learner sees.
        block_prevalence_: training prevalence used for a missing block.
    """

    def __init__(
        self,
        classifier: str | BaseEstimator = "logistic",
        selection: Selection = DEFAULT_SELECTION,
        meta: str | BaseEstimator = "logistic",
        inner_cv: int = 5,
        search: bool = False,
        random_state: int | None = 0,
        blocks: BlockSpec = None,
    ):
        self.classifier = classifier
        self.selection = selection
        self.meta = meta
        self.inner_cv = inner_cv
        self.search = search
        self.random_state = random_state
        self.blocks = blocks

    def fit(self, X, y, groups=None):
        """Fit block models, then the meta-learner on their out-of-fold probabilities.

        Args:
            X: modelling table (``patient_id`` index) or array with the columns of ``blocks``.
            y: two class labels, one per row.
            groups: patient of each row, for every inner CV; default ``X.index`` of a table, else
                one per row. Routed by metadata routing after ``set_fit_request(groups=True)``.

        Returns:
            self
        """
        table, labels, blocks = self._training_table(X, y, groups)
        out_of_fold = self._fit_block_models(table, labels, blocks)
        self.indicator_blocks_ = [block for block in blocks if out_of_fold[block].isna().any()]
        meta_features = self._meta_features(out_of_fold)
        self.meta_feature_names_ = list(meta_features.columns)
        self.meta_model_ = make_pipeline(self.meta, None, random_state=self.random_state).fit(meta_features, labels)
        return self

    def _meta_features(self, probabilities: pd.DataFrame) -> pd.DataFrame:
        features = {f"{block}__proba": probabilities[block].fillna(self.block_prevalence_[block]) for block in self.blocks_}
        for block in self.indicator_blocks_:
            features[f"{block}__missing"] = probabilities[block].isna().astype(float)
        return pd.DataFrame(features, index=probabilities.index)

    def predict_proba(self, X) -> np.ndarray:
        """Meta-learner probabilities, shape (n_rows, 2) in the order of ``classes_``; NaN for rows with no block at all.

        Args:
            X: table or array with the columns seen in fit.
        """
        probabilities = self.block_probabilities(X)
        available = probabilities.notna()
        no_block = ~available.any(axis=1).to_numpy()
        positive = self.meta_model_.predict_proba(self._meta_features(probabilities))[:, 1]
        positive[no_block] = np.nan
        self._warn_unpredictable(available, no_block, "no block present")
        return self._two_column_proba(positive)

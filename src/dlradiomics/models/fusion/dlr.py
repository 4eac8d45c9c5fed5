"""DLR fusion: radiomic and deep blocks compressed together by PCA, then early, ensemble or stacking fusion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.models.blocks import BLOCK_SEPARATOR, blocks_of, modality_of
from dlradiomics.models.fusion._base import FusionClassifier, block_presence
from dlradiomics.models.fusion.early import EarlyFusion
from dlradiomics.models.fusion.late import StackingFusion, WeightedEnsembleFusion
from dlradiomics.models.reduction import BoundedPCA

STRATEGIES = ("early", "ensemble", "stacking")
EARLY_REDUCED_BLOCK = "DLR.pca"


class DLRFusion(FusionClassifier):
    """Deep learning radiomics fusion (Lu et al. 2024): PCA over radiomic + deep features, then a fusion strategy.

    ``strategy="early"``: all blocks of all modalities go through one impute -> scale -> PCA to
    ``n_components`` (the paper's 108), giving the single block ``"DLR.pca"``, then
    :class:`EarlyFusion`. ``"ensemble"`` / ``"stacking"``: late fusion needs several blocks, so
    each modality's radiomic + deep columns get their own PCA (block ``"{modality}.dlr"``), then
    :class:`WeightedEnsembleFusion` / :class:`StackingFusion` over those blocks.

    Every PCA is fitted in ``fit`` only, on the training rows that have all its source blocks,
    with ``n_components`` capped by those rows and columns. A row lacking a source block gets NaN
    in the reduced block (rather than imputed components), so early fusion drops it and late
    fusion uses the row's other modalities.

    Args:
        strategy: ``"early"``, ``"ensemble"`` or ``"stacking"``.
        n_components: PCA components per reduced block.
        classifier: a name from ``CLASSIFIERS`` or an unfitted classifier.
        selection: selector specs applied after the PCA (default None: the PCA is the selection).
        meta: meta-learner of the stacking strategy.
        weighting: ``"accuracy"`` or ``"auc"``, for the ensemble strategy.
        inner_cv: inner folds of the late strategies.
        search: hyper-parameter search in inner CV.
        random_state: seed of everything fitted.

    Attributes:
        reducers_: per reduced block, the source columns and the fitted impute -> scale -> PCA pipeline.
        fusion_: the fitted fusion estimator on the reduced table.
        dropped_patients_: patients the early strategy left out of fit (empty for late strategies).
    """

    def __init__(
        self,
        strategy: str = "early",
        n_components: int = 108,
        classifier: str | BaseEstimator = "logistic",
        selection: str | Sequence[str] | None = None,
        meta: str | BaseEstimator = "logistic",
        weighting: str = "accuracy",
        inner_cv: int = 5,
        search: bool = False,
        random_state: int | None = 0,
    ):
        self.strategy = strategy
        self.n_components = n_components
        self.classifier = classifier
        self.selection = selection
        self.meta = meta
        self.weighting = weighting
        self.inner_cv = inner_cv
        self.search = search
        self.random_state = random_state

    def _reduced_block_sources(self, blocks: dict[str, list[str]]) -> dict[str, list[str]]:
        if self.strategy == "early":
            return {EARLY_REDUCED_BLOCK: list(blocks)}
        by_modality: dict[str, list[str]] = {}
        for block in blocks:
            by_modality.setdefault(f"{modality_of(block)}.dlr", []).append(block)
        return by_modality

    def _make_fusion(self) -> FusionClassifier:
        common = dict(classifier=self.classifier, selection=self.selection, search=self.search, random_state=self.random_state)
        if self.strategy == "early":
            return EarlyFusion(**common)
        if self.strategy == "ensemble":
            return WeightedEnsembleFusion(weighting=self.weighting, inner_cv=self.inner_cv, **common)
        return StackingFusion(meta=self.meta, inner_cv=self.inner_cv, **common)

    def fit(self, X: pd.DataFrame, y):
        """Fit the PCA reducers and the fusion estimator on the training rows.

        Args:
            X: modelling table (``patient_id`` index) with radiomic and/or deep blocks.
            y: binary labels, one per row.

        Returns:
            self
        """
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        blocks, labels = self._remember_input(X, y)
        presence = block_presence(X, blocks)
        self.reducers_ = {}
        for reduced_block, source_blocks in self._reduced_block_sources(blocks).items():
            columns = [column for block in source_blocks for column in blocks[block]]
            complete = presence[source_blocks].all(axis=1).to_numpy()
            if not complete.any():
                raise ValueError(f"DLRFusion: no training row has every block of {source_blocks}")
            reducer = Pipeline(
                [
                    ("impute", SimpleImputer(strategy="median")),
                    ("drop_constant", VarianceThreshold(threshold=0.0)),
                    ("scale", StandardScaler()),
                    ("pca", BoundedPCA(self.n_components, random_state=self.random_state)),
                ]
            ).fit(X.loc[complete, columns])
            self.reducers_[reduced_block] = (source_blocks, columns, reducer)
        self.fusion_ = self._make_fusion().fit(self._reduce(X, blocks), labels)
        self.dropped_patients_ = list(getattr(self.fusion_, "dropped_patients_", []))
        return self

    def _reduce(self, X: pd.DataFrame, blocks: dict[str, list[str]]) -> pd.DataFrame:
        presence = block_presence(X, blocks)
        reduced_parts = []
        for reduced_block, (source_blocks, columns, reducer) in self.reducers_.items():
            complete = presence[source_blocks].all(axis=1).to_numpy()
            names = [f"{reduced_block}{BLOCK_SEPARATOR}{name}" for name in reducer[-1].get_feature_names_out()]
            values = np.full((len(X), len(names)), np.nan)
            if complete.any():
                values[complete] = reducer.transform(X.loc[complete, columns])
            reduced_parts.append(pd.DataFrame(values, index=X.index, columns=names))
        return pd.concat(reduced_parts, axis=1)

    def transform_blocks(self, X: pd.DataFrame) -> pd.DataFrame:
        """The reduced table (PCA components per reduced block) that the fusion estimator sees.

        Args:
            X: modelling table with the columns seen in fit.
        """
        X = self._check_fitted_table(X)
        return self._reduce(X, blocks_of(X.columns))

    def block_probabilities(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per reduced block probabilities of the underlying fusion (``"early"`` for the early strategy).

        Args:
            X: modelling table with the columns seen in fit.
        """
        return self.fusion_.block_probabilities(self.transform_blocks(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities (n_rows, 2) from the fusion on the reduced table.

        Args:
            X: modelling table with the columns seen in fit.
        """
        return self.fusion_.predict_proba(self.transform_blocks(X))

    @property
    def weights_(self) -> dict[str, float]:
        """Ensemble weights of the reduced blocks (ensemble strategy only)."""
        return self.fusion_.weights_

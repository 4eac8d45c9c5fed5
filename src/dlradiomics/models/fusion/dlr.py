"""DLR fusion: radiomic and deep blocks compressed by PCA, then early, ensemble or stacking fusion.

Two compositions of the PCA:

- ``"paper"`` (Lu et al. 2024, the default): each modality's deep block is reduced on its own
  (32 components per modality), the per-modality deep components are joined and reduced to the
  deep part (51), the radiomic blocks are joined and reduced to the radiomic part (57); the two
  parts (108 columns) are what early fusion sees. The late strategies keep the parts per
  modality (each modality's radiomic and deep part, the paper's counts shared among the
  modalities), so a patient lacking a modality is scored from the modalities the patient has.
- ``"whole_table"`` (this package before the paper's composition was added): early fusion runs one
  PCA over every block together (108); late fusion one PCA per modality over its radiomic + deep
  blocks.

Every PCA is a :class:`~dlradiomics.models.BoundedPCA`: its components are capped by the rank and
a variance floor of the training fold it is fitted on, so a small cohort never feeds a
near-zero-variance component to a scaler.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.models.blocks import BLOCK_SEPARATOR, kind_of, modality_of
from dlradiomics.models.fusion._base import (
    BlockSpec,
    FusionClassifier,
    Selection,
    apply_block_reducers,
    block_presence,
    fit_block_reducers,
)
from dlradiomics.models.fusion.early import EarlyFusion
from dlradiomics.models.fusion.late import StackingFusion, WeightedEnsembleFusion
from dlradiomics.models.reduction import BoundedPCA
from dlradiomics.models.shared_fits import pipeline_class

STRATEGIES = ("early", "ensemble", "stacking")
COMPOSITIONS = ("paper", "whole_table")
# The paper's component counts: 32 per modality's deep block, then 51 deep + 57 radiomic = 108.
PAPER_DEEP_COMPONENTS_PER_MODALITY = 32
PAPER_DEEP_COMPONENTS = 51
PAPER_RADIOMIC_COMPONENTS = 57
WHOLE_TABLE_COMPONENTS = 108
EARLY_REDUCED_BLOCK = "DLR.pca"
# The paper's two parts as early fusion sees them, each spanning every modality.
DEEP_PART = "DLR.deep"
RADIOMIC_PART = "DLR.radiomic"
# The late strategies' parts, one of each kind per modality: "{modality}.dlr_deep", "{modality}.dlr_radiomic".
DEEP_PART_KIND = "dlr_deep"
RADIOMIC_PART_KIND = "dlr_radiomic"
DEEP_KIND = "deep"


@dataclass(frozen=True)
class DLRComposition:
    """How DLR fusion compresses radiomic and deep features (a study's ``dlr:`` section, typed).

    Args:
        composition: ``"paper"`` or ``"whole_table"`` (see :class:`DLRFusion`).
        deep_components: components of the deep part (paper: 51).
        radiomic_components: components of the radiomic part (paper: 57).
        deep_components_per_modality: components of each modality's deep block (paper: 32).
        whole_table_components: components of the ``"whole_table"`` PCA (paper's total: 108).
    """

    composition: str = "paper"
    deep_components: int = PAPER_DEEP_COMPONENTS
    radiomic_components: int = PAPER_RADIOMIC_COMPONENTS
    deep_components_per_modality: int = PAPER_DEEP_COMPONENTS_PER_MODALITY
    whole_table_components: int = WHOLE_TABLE_COMPONENTS

    def __post_init__(self) -> None:
        if self.composition not in COMPOSITIONS:
            raise ValueError(f"composition must be one of {COMPOSITIONS}, got {self.composition!r}")

    def fusion_params(self) -> dict[str, Any]:
        """The keyword arguments of :class:`DLRFusion` that this composition sets."""
        return {
            "composition": self.composition,
            "deep_components": self.deep_components,
            "radiomic_components": self.radiomic_components,
            "deep_components_per_modality": self.deep_components_per_modality,
            "n_components": self.whole_table_components,
        }


def _scaled_pca(n_components: int, random_state: int | None) -> Pipeline:
    """Impute -> drop constant columns -> standardise -> bounded PCA, fitted on training rows.

    Built with `pipeline_class()`, so inside a grid's `sharing_fits` block the same reduction of the
    same training rows is fitted once for every classifier and fusion strategy (label-free steps).
    """
    return pipeline_class()(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("drop_constant", VarianceThreshold(threshold=0.0)),
            ("scale", StandardScaler()),
            ("pca", BoundedPCA(n_components, random_state=random_state)),
        ]
    )


class DLRFusion(FusionClassifier):
    """Deep learning radiomics fusion (Lu et al. 2024): PCA over radiomic + deep features, then a fusion strategy.

    ``composition="paper"``: each deep block (kind ``deep``, one per modality) is standardised
    and reduced to ``deep_components_per_modality``.

    - ``strategy="early"`` (:class:`EarlyFusion`) classifies two parts side by side: the deep part
      ``"DLR.deep"`` (the reduced deep blocks of every modality joined and reduced to
      ``deep_components``) and the radiomic part ``"DLR.radiomic"`` (every other block joined,
      standardised and reduced to ``radiomic_components``). A row needs every block: that is
      what early fusion is.
    - ``"ensemble"`` / ``"stacking"`` (:class:`WeightedEnsembleFusion` / :class:`StackingFusion`)
      fit one model per part, and the parts are per modality: ``"{modality}.dlr_radiomic"`` (that
      modality's non-deep blocks, standardised, PCA) and ``"{modality}.dlr_deep"`` (that
      modality's reduced deep block, PCA). A patient lacking a modality is scored from the parts
      of the modalities the patient has, as every late fusion of this package does. The paper's
      counts are shared evenly by the modalities having that kind of part: each radiomic part asks
      for ``ceil(radiomic_components / m)`` components and each deep part for
      ``ceil(deep_components / m)`` (``m``: modalities with such a part), so together they ask for
      about what the paper's two parts hold; with one modality the two parts are exactly the
      paper's (57 and 51; a deep part is further capped by its modality's
      ``deep_components_per_modality`` columns).

    ``composition="whole_table"``: ``"early"`` reduces all blocks together to ``n_components``
    (block ``"DLR.pca"``); the late strategies reduce each modality's blocks together to
    ``n_components`` (blocks ``"{modality}.dlr"``).

    Every PCA is fitted in ``fit`` only, on the training rows that have all its source blocks,
    its components capped by those rows (see :class:`~dlradiomics.models.BoundedPCA`); for early
    fusion of the two parts, their counts together are also capped by the rank of the training
    rows, keeping their ratio (``part_components_``). A row
    lacking a source block gets NaN in that reduced block (rather than imputed components), so
    early fusion drops it and late fusion uses the row's other reduced blocks.

    Args:
        strategy: ``"early"``, ``"ensemble"`` or ``"stacking"``.
        n_components: PCA components per reduced block of the ``"whole_table"`` composition.
        classifier: a name from ``CLASSIFIERS`` or an unfitted classifier.
        selection: selector specs applied after the PCA (default None: the PCA is the selection).
        meta: meta-learner of the stacking strategy.
        weighting: ``"accuracy"`` or ``"auc"``, for the ensemble strategy.
        inner_cv: inner folds of the late strategies.
        search: hyper-parameter search in inner CV.
        random_state: seed of everything fitted.
        composition: ``"paper"`` or ``"whole_table"``.
        deep_components: components of the deep part (``"paper"``).
        radiomic_components: components of the radiomic part (``"paper"``).
        deep_components_per_modality: components of each deep block before they are joined (``"paper"``).
        blocks: None to read the blocks from ``"{modality}.{kind}__{feature}"`` column names; or a
            mapping block -> column names or positions (name deep blocks ``"{modality}.deep"``).

    Attributes:
        block_reducers_: per deep block, its own fitted reduction (``"paper"``; empty for ``"whole_table"``).
        reducers_: per reduced block, ``(source blocks, source columns, fitted pipeline)``; for the
            ``"paper"`` deep part the source columns are the deep blocks' reduced columns.
        part_components_: components asked of each part (``"paper"``): ``"DLR.deep"`` and
            ``"DLR.radiomic"`` for early fusion, after its joint cap; each modality's parts for the
            late strategies. Each PCA may keep fewer (its ``n_components_``).
        fusion_: the fitted fusion estimator on the reduced table.
        dropped_patients_: patients the early strategy left out of fit (empty for late strategies).
        classes_: the two class labels; ``n_features_in_``, ``feature_names_in_``: the input seen in fit.
    """

    def __init__(
        self,
        strategy: str = "early",
        n_components: int = WHOLE_TABLE_COMPONENTS,
        classifier: str | BaseEstimator = "logistic",
        selection: Selection = None,
        meta: str | BaseEstimator = "logistic",
        weighting: str = "accuracy",
        inner_cv: int = 5,
        search: bool = False,
        random_state: int | None = 0,
        composition: str = "paper",
        deep_components: int = PAPER_DEEP_COMPONENTS,
        radiomic_components: int = PAPER_RADIOMIC_COMPONENTS,
        deep_components_per_modality: int = PAPER_DEEP_COMPONENTS_PER_MODALITY,
        blocks: BlockSpec = None,
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
        self.composition = composition
        self.deep_components = deep_components
        self.radiomic_components = radiomic_components
        self.deep_components_per_modality = deep_components_per_modality
        self.blocks = blocks

    def _paper_parts(self, blocks: dict[str, list[str]]) -> dict[str, list[str]]:
        """The paper composition's parts: part -> its source blocks (deep blocks by their original names).

        Early fusion: one radiomic and one deep part over every modality. Late strategies: a
        radiomic and a deep part per modality (in the order of the blocks), so each patient's
        modalities can be modelled without the others.
        """
        deep = [block for block in blocks if kind_of(block) == DEEP_KIND]
        radiomic = [block for block in blocks if kind_of(block) != DEEP_KIND]
        if self.strategy == "early":
            parts = {RADIOMIC_PART: radiomic, DEEP_PART: deep}
        else:
            parts = {}
            for modality in dict.fromkeys(modality_of(block) for block in blocks):
                parts[f"{modality}.{RADIOMIC_PART_KIND}"] = [block for block in radiomic if modality_of(block) == modality]
                parts[f"{modality}.{DEEP_PART_KIND}"] = [block for block in deep if modality_of(block) == modality]
        return {part: sources for part, sources in parts.items() if sources}

    def _reducers(self, blocks: dict[str, list[str]]) -> dict[str, tuple[list[str], Pipeline]]:
        """Unfitted reducers: reduced block -> (its source blocks, pipeline over their columns).

        For ``"paper"``, ``blocks`` are those after each deep block's own reduction (``block_reducers_``).
        """
        if self.composition == "whole_table":
            if self.strategy == "early":
                groups = {EARLY_REDUCED_BLOCK: list(blocks)}
            else:
                groups = {}
                for block in blocks:
                    groups.setdefault(f"{modality_of(block)}.dlr", []).append(block)
            return {name: (sources, _scaled_pca(self.n_components, self.random_state)) for name, sources in groups.items()}
        reducers: dict[str, tuple[list[str], Pipeline]] = {}
        for part, sources in self._paper_parts(blocks).items():
            count = self.part_components_[part]
            if kind_of(sources[0]) == DEEP_KIND:
                # no scaling between the two PCAs: the joined per-modality components keep their
                # variances, so the second PCA ranks directions of the deep features as a whole
                reducers[part] = (sources, pipeline_class()([("pca", BoundedPCA(count, random_state=self.random_state))]))
            else:
                reducers[part] = (sources, _scaled_pca(count, self.random_state))
        return reducers

    def _part_components(self, blocks: dict[str, list[str]], n_complete_rows: int) -> dict[str, int]:
        """Components asked of each part; early fusion of both shares the training rank in the paper's proportion.

        Each part's PCA is capped by its own training rank, but early fusion classifies the two
        parts side by side: with ``n`` training rows, columns beyond ``n - 1`` are linear
        combinations of the others on those rows and bring only noise. So when the two counts
        together exceed ``n - 1`` they shrink to it, keeping their ratio (51:57 -> 21:24 on 46 rows).
        The late strategies' per-modality parts share the paper's counts evenly (see the class).
        """
        if self.composition != "paper":
            return {}
        deep, radiomic = self.deep_components, self.radiomic_components
        if self.strategy != "early":
            parts = list(self._paper_parts(blocks))
            asked = {DEEP_PART_KIND: deep, RADIOMIC_PART_KIND: radiomic}
            sharing = Counter(kind_of(part) for part in parts)  # modalities having each kind of part
            return {part: math.ceil(asked[kind_of(part)] / sharing[kind_of(part)]) for part in parts}
        kinds = {kind_of(block) == DEEP_KIND for block in blocks}
        budget = n_complete_rows - 1
        if kinds == {True, False} and deep + radiomic > budget:
            deep = max(1, round(budget * deep / (deep + radiomic)))
            radiomic = max(1, budget - deep)
        return {DEEP_PART: deep, RADIOMIC_PART: radiomic}

    def _make_fusion(self) -> FusionClassifier:
        common = dict(classifier=self.classifier, selection=self.selection, search=self.search, random_state=self.random_state)
        if self.strategy == "early":
            return EarlyFusion(**common)
        if self.strategy == "ensemble":
            return WeightedEnsembleFusion(weighting=self.weighting, inner_cv=self.inner_cv, **common)
        return StackingFusion(meta=self.meta, inner_cv=self.inner_cv, **common)

    def fit(self, X, y, groups=None):
        """Fit the PCA reducers and the fusion estimator on the training rows.

        Args:
            X: modelling table (``patient_id`` index) with radiomic and/or deep blocks, or an array
                with the columns of ``blocks``.
            y: two class labels, one per row.
            groups: patient of each row, for every inner CV; default ``X.index`` of a table, else
                one per row. Routed by metadata routing after ``set_fit_request(groups=True)``.

        Returns:
            self
        """
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.composition not in COMPOSITIONS:
            raise ValueError(f"composition must be one of {COMPOSITIONS}, got {self.composition!r}")
        table, labels, blocks = self._training_table(X, y, groups)
        presence = block_presence(table, blocks)
        self.reducers_ = {}
        self.part_components_ = self._part_components(blocks, int(presence.all(axis=1).sum()))
        self.block_reducers_ = {}
        if self.composition == "paper":
            deep_blocks = [block for block in blocks if kind_of(block) == DEEP_KIND]
            self.block_reducers_ = fit_block_reducers(
                table, blocks, deep_blocks,
                lambda: _scaled_pca(self.deep_components_per_modality, self.random_state), labels,
            )
        per_block, per_block_columns = apply_block_reducers(table, blocks, self.block_reducers_)
        for reduced_block, (source_blocks, reducer) in self._reducers(per_block_columns).items():
            columns = [column for block in source_blocks for column in per_block_columns[block]]
            complete = presence[source_blocks].all(axis=1).to_numpy()
            if not complete.any():
                raise ValueError(f"DLRFusion: no training row has every block of {source_blocks}")
            reducer.fit(per_block.loc[complete, columns])
            self.reducers_[reduced_block] = (source_blocks, columns, reducer)
        self.fusion_ = self._make_fusion().fit(self._reduce(table), labels)
        self.dropped_patients_ = list(getattr(self.fusion_, "dropped_patients_", []))
        return self

    def _reduce(self, table: pd.DataFrame) -> pd.DataFrame:
        presence = block_presence(table, self.block_columns_)
        table, _ = apply_block_reducers(table, self.block_columns_, self.block_reducers_)
        reduced_parts = []
        for reduced_block, (source_blocks, columns, reducer) in self.reducers_.items():
            complete = presence[source_blocks].all(axis=1).to_numpy()
            names = [f"{reduced_block}{BLOCK_SEPARATOR}{name}" for name in reducer[-1].get_feature_names_out()]
            values = np.full((len(table), len(names)), np.nan)
            if complete.any():
                values[complete] = reducer.transform(table.loc[complete, columns])
            reduced_parts.append(pd.DataFrame(values, index=table.index, columns=names))
        return pd.concat(reduced_parts, axis=1)

    def transform_blocks(self, X) -> pd.DataFrame:
        """The reduced table (PCA components per reduced block) that the fusion estimator sees.

        Args:
            X: table or array with the columns seen in fit.
        """
        return self._reduce(self._prediction_table(X))

    def block_probabilities(self, X) -> pd.DataFrame:
        """Per reduced block probabilities of ``classes_[1]`` from the underlying fusion (``"early"`` for the early strategy).

        Args:
            X: table or array with the columns seen in fit.
        """
        reduced = self.transform_blocks(X)  # checks that self is fitted before fusion_ is read
        return self.fusion_.block_probabilities(reduced)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities (n_rows, 2) in the order of ``classes_``, from the fusion on the reduced table.

        Args:
            X: table or array with the columns seen in fit.
        """
        reduced = self.transform_blocks(X)  # checks that self is fitted before fusion_ is read
        return self.fusion_.predict_proba(reduced)

    @property
    def weights_(self) -> dict[str, float]:
        """Ensemble weights of the reduced blocks (ensemble strategy only)."""
        return self.fusion_.weights_

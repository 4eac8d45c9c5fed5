"""How a model configuration becomes an unfitted estimator: feature source x modalities x fusion x classifier.

Feature sources: ``radiomic`` (PyRadiomics blocks), ``deep`` (CNN embedding blocks) and ``dlr``
(both kinds together). For one modality the rows are images (predictions averaged per patient);
for several modalities the rows are patients (see `dlradiomics.models.table_level`).

- One block (``radiomic`` or ``deep`` with one modality): every fusion is the same model, a
  selection + classifier pipeline, recorded as ``fusion="single"``.
- ``dlr`` with one modality fuses across the two kinds: early = `DLRFusion` (PCA over radiomic +
  deep, then one classifier); ensemble / stacking = one model per kind block.
- Several modalities: `EarlyFusion`, `WeightedEnsembleFusion`, `StackingFusion` over the blocks,
  or `DLRFusion(strategy=...)` for ``dlr``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sklearn.base import BaseEstimator

from dlradiomics.models.blocks import table_level
from dlradiomics.models.classifiers import DEFAULT_SELECTION, make_pipeline
from dlradiomics.models.fusion import DLRFusion, EarlyFusion, StackingFusion, WeightedEnsembleFusion
from dlradiomics.models.selection import PCAStep, SelectionStep

SOURCES = ("radiomic", "deep", "dlr")
FUSIONS = ("early", "ensemble", "stacking")
KINDS_OF_SOURCE = {"radiomic": ("radiomic",), "deep": ("deep",), "dlr": ("radiomic", "deep")}
DEFAULT_SELECTIONS: dict[str, tuple[SelectionStep, ...] | None] = {
    "radiomic": DEFAULT_SELECTION,
    # The paper compresses each modality's CNN embedding to 32 principal components.
    "deep": (PCAStep(32),),
    "dlr": (PCAStep(32),),
}


@dataclass(frozen=True)
class ModelConfiguration:
    """One model: which features, which modalities, which fusion, which classifier.

    Args:
        source: ``radiomic``, ``deep`` or ``dlr``.
        modalities: Modalities used, e.g. ``("US",)``.
        fusion: ``single``, ``early``, ``ensemble`` or ``stacking``.
        classifier: A name from ``CLASSIFIERS``, or the name of a classifier given to
            `build_estimator` in ``custom_classifiers``.
    """

    source: str
    modalities: tuple[str, ...]
    fusion: str
    classifier: str

    @property
    def label(self) -> str:
        """Readable name, e.g. ``dlr | US+MG | stacking | svm``."""
        return f"{self.source} | {'+'.join(self.modalities)} | {self.fusion} | {self.classifier}"

    @property
    def kinds(self) -> tuple[str, ...]:
        """Feature kinds the model reads (``dlr`` reads both)."""
        return KINDS_OF_SOURCE[self.source]

    @property
    def level(self) -> str:
        """Rows of its modelling table: ``image`` for one modality, ``patient`` for several."""
        return table_level(self.modalities)

    def key(self) -> dict[str, str]:
        """The identifying columns of results and predictions tables."""
        return {
            "source": self.source,
            "modalities": "+".join(self.modalities),
            "fusion": self.fusion,
            "classifier": self.classifier,
        }


def build_estimator(
    configuration: ModelConfiguration,
    *,
    selections: Mapping[str, Sequence[SelectionStep] | None] | None = None,
    custom_classifiers: Mapping[str, BaseEstimator] | None = None,
    dlr_components: int = 108,
    inner_cv: int = 3,
    random_state: int = 0,
) -> BaseEstimator:
    """The unfitted estimator of one configuration.

    Args:
        configuration: The model configuration.
        selections: Selection steps per source (default `DEFAULT_SELECTIONS`).
        custom_classifiers: Unfitted classifiers by name, for configurations whose classifier is
            not one of ``CLASSIFIERS`` (each is cloned; `make_pipeline` standardises its input).
        dlr_components: PCA components of DLR fusion (the paper's 108).
        inner_cv: Inner folds of late fusion (ensemble weights, stacking meta-features).
        random_state: Seed of everything fitted.

    Returns:
        A scikit-learn classifier taking the configuration's modelling table.
    """
    selection = {**DEFAULT_SELECTIONS, **(selections or {})}[configuration.source]
    classifier: str | BaseEstimator = (custom_classifiers or {}).get(configuration.classifier, configuration.classifier)
    fusion = configuration.fusion
    if fusion == "single":
        return make_pipeline(classifier, selection, random_state=random_state)
    if configuration.source == "dlr" and (fusion == "early" or len(configuration.modalities) > 1):
        return DLRFusion(
            strategy=fusion,
            n_components=dlr_components,
            classifier=classifier,
            meta="logistic",
            inner_cv=inner_cv,
            random_state=random_state,
        )
    if fusion == "early":
        return EarlyFusion(classifier=classifier, selection=selection, random_state=random_state)
    if fusion == "ensemble":
        return WeightedEnsembleFusion(
            classifier=classifier, selection=selection, inner_cv=inner_cv, random_state=random_state
        )
    return StackingFusion(
        classifier=classifier, selection=selection, meta="logistic", inner_cv=inner_cv, random_state=random_state
    )

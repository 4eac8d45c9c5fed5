"""How a model configuration becomes an unfitted estimator: feature source x modalities x fusion x classifier.

Feature sources: ``radiomic`` (PyRadiomics blocks), ``deep`` (CNN embedding blocks), ``dlr``
(both kinds together), ``clinical`` (the patient's clinical variables alone, see
`dlradiomics.models.clinical`) and ``radiomic+clinical`` (radiomics with the clinical block). For
one modality the rows are images (predictions averaged per patient); for several modalities the
rows are patients (see `dlradiomics.models.table_level`).

- One block (``radiomic``, ``deep`` or ``clinical`` with one modality): every fusion is the same
  model, a selection + classifier pipeline, recorded as ``fusion="single"``.
- ``dlr``: `DLRFusion(strategy=...)`, composed as the paper does by default (each modality's deep
  block to 32 components, then a deep part and a radiomic part with their own component counts,
  fused by the strategy; see `DLRComposition`). With ``composition="whole_table"`` the earlier
  composition and routing: early = one PCA over radiomic + deep; late = one model per kind block
  (one modality) or one PCA per modality (several).
- Several blocks otherwise (several modalities, or radiomics with the clinical block):
  `EarlyFusion`, `WeightedEnsembleFusion`, `StackingFusion` over the blocks. Deep early fusion
  reduces each modality's deep block on its own (the ``deep`` selection per block, e.g. 32
  components each), as the paper does. A source with the clinical block prepares it first
  (`ClinicalEncodingStep`), in every pipeline that sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sklearn.base import BaseEstimator

from dlradiomics.models.blocks import block_name, table_level
from dlradiomics.models.classifiers import DEFAULT_SELECTION, make_pipeline
from dlradiomics.models.clinical import CLINICAL_KIND, ClinicalEncodingStep
from dlradiomics.models.fusion import DLRComposition, DLRFusion, EarlyFusion, StackingFusion, WeightedEnsembleFusion
from dlradiomics.models.selection import PCAStep, SelectionStep

# Deep features with the clinical block wait for a per-block reduction: one PCA over both would
# fold the clinical variables into the deep components.
SOURCES = ("radiomic", "deep", "dlr", "clinical", "radiomic+clinical")
FUSIONS = ("early", "ensemble", "stacking")
KINDS_OF_SOURCE = {
    "radiomic": ("radiomic",),
    "deep": ("deep",),
    "dlr": ("radiomic", "deep"),
    "clinical": (CLINICAL_KIND,),
    "radiomic+clinical": ("radiomic", CLINICAL_KIND),
}
DEFAULT_SELECTIONS: dict[str, tuple[SelectionStep, ...] | None] = {
    "radiomic": DEFAULT_SELECTION,
    # The paper compresses each modality's CNN embedding to 32 principal components.
    "deep": (PCAStep(32),),
    "dlr": (PCAStep(32),),
    # A handful of clinical variables needs no selection; numeric unless a study names categories.
    "clinical": (ClinicalEncodingStep(),),
    "radiomic+clinical": (ClinicalEncodingStep(), *DEFAULT_SELECTION),
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
    def blocks(self) -> tuple[str, ...]:
        """Feature blocks the model reads, e.g. ``("US.radiomic", "clinical")`` (the clinical block once)."""
        names = [block_name(modality, kind) for kind in self.kinds for modality in self.modalities]
        return tuple(dict.fromkeys(names))

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
    dlr: DLRComposition | None = None,
    inner_cv: int = 3,
    random_state: int = 0,
    dlr_components: int | None = None,
) -> BaseEstimator:
    """The unfitted estimator of one configuration.

    Args:
        configuration: The model configuration.
        selections: Selection steps per source (default `DEFAULT_SELECTIONS`).
        custom_classifiers: Unfitted classifiers by name, for configurations whose classifier is
            not one of ``CLASSIFIERS`` (each is cloned; `make_pipeline` standardises its input).
        dlr: How DLR fusion compresses its features (default `DLRComposition()`: the paper's).
        inner_cv: Inner folds of late fusion (ensemble weights, stacking meta-features).
        random_state: Seed of everything fitted.
        dlr_components: The earlier spelling of ``dlr.whole_table_components``, kept for its callers.

    Returns:
        A scikit-learn classifier taking the configuration's modelling table.
    """
    selection = {**DEFAULT_SELECTIONS, **(selections or {})}[configuration.source]
    classifier: str | BaseEstimator = (custom_classifiers or {}).get(configuration.classifier, configuration.classifier)
    fusion = configuration.fusion
    dlr = dlr or DLRComposition()
    if dlr_components is not None:
        dlr = replace(dlr, whole_table_components=dlr_components)
    if fusion == "single":
        return make_pipeline(classifier, selection, random_state=random_state)
    if configuration.source == "dlr" and (
        dlr.composition == "paper" or fusion == "early" or len(configuration.modalities) > 1
    ):
        return DLRFusion(
            strategy=fusion,
            classifier=classifier,
            meta="logistic",
            inner_cv=inner_cv,
            random_state=random_state,
            **dlr.fusion_params(),
        )
    if fusion == "early" and configuration.source == "deep":
        # each modality's embedding is reduced on its own (the paper's 32 per modality)
        return EarlyFusion(classifier=classifier, selection=None, block_selection=selection, random_state=random_state)
    if fusion == "early":
        return EarlyFusion(classifier=classifier, selection=selection, random_state=random_state)
    if fusion == "ensemble":
        return WeightedEnsembleFusion(
            classifier=classifier, selection=selection, inner_cv=inner_cv, random_state=random_state
        )
    return StackingFusion(
        classifier=classifier, selection=selection, meta="logistic", inner_cv=inner_cv, random_state=random_state
    )

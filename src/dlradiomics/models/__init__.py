"""Models: modelling tables, feature selectors, the seven classifiers, the fusion estimators and
the factory that turns a model configuration into one of them.

Everything fitted is a scikit-learn estimator, so it is fitted inside training folds only.
"""

from dlradiomics.models.blocks import (
    BLOCK_SEPARATOR,
    META_COLUMNS,
    aggregate_by_patient,
    block_name,
    blocks_of,
    build_model_table,
    kind_of,
    modality_of,
    table_level,
)
from dlradiomics.models.classifiers import (
    CLASSIFIERS,
    DEFAULT_SELECTION,
    make_classifier,
    make_pipeline,
    make_preprocessing,
)
from dlradiomics.models.clinical import CLINICAL_BLOCK, CLINICAL_KIND, ClinicalEncoder, ClinicalEncodingStep
from dlradiomics.models.factory import (
    DEFAULT_SELECTIONS,
    FUSIONS,
    KINDS_OF_SOURCE,
    SOURCES,
    ModelConfiguration,
    build_estimator,
)
from dlradiomics.models.fusion import (
    DLRComposition,
    DLRFusion,
    EarlyFusion,
    MissingBlockWarning,
    StackingFusion,
    WeightedEnsembleFusion,
)
from dlradiomics.models.inner_cv import PatientGroupKFold, patient_groups
from dlradiomics.models.reduction import BoundedPCA
from dlradiomics.models.selection import (
    CorrelationStep,
    LassoStep,
    MannWhitneyStep,
    PCAStep,
    SelectionStep,
    describe_step,
    parse_selection_step,
)
from dlradiomics.models.selectors import (
    CorrelationFilter,
    LassoSelector,
    MannWhitneySelector,
    SelectionFallbackWarning,
)
from dlradiomics.models.terms import TERM_COLUMNS, model_terms

__all__ = [
    "BLOCK_SEPARATOR",
    "BoundedPCA",
    "CLASSIFIERS",
    "CLINICAL_BLOCK",
    "CLINICAL_KIND",
    "ClinicalEncoder",
    "ClinicalEncodingStep",
    "CorrelationFilter",
    "CorrelationStep",
    "DEFAULT_SELECTION",
    "DEFAULT_SELECTIONS",
    "DLRComposition",
    "DLRFusion",
    "EarlyFusion",
    "FUSIONS",
    "KINDS_OF_SOURCE",
    "LassoSelector",
    "LassoStep",
    "META_COLUMNS",
    "MannWhitneySelector",
    "MannWhitneyStep",
    "MissingBlockWarning",
    "ModelConfiguration",
    "PCAStep",
    "PatientGroupKFold",
    "SOURCES",
    "SelectionFallbackWarning",
    "SelectionStep",
    "TERM_COLUMNS",
    "StackingFusion",
    "WeightedEnsembleFusion",
    "aggregate_by_patient",
    "block_name",
    "blocks_of",
    "build_estimator",
    "build_model_table",
    "describe_step",
    "kind_of",
    "make_classifier",
    "make_pipeline",
    "make_preprocessing",
    "modality_of",
    "model_terms",
    "parse_selection_step",
    "patient_groups",
    "table_level",
]

"""Models: modelling tables, feature selectors, the seven classifiers and the fusion estimators.

Everything fitted is a scikit-learn estimator, so it is fitted inside training folds only.
"""

from dlradiomics.models.blocks import (
    BLOCK_SEPARATOR,
    META_COLUMNS,
    aggregate_by_patient,
    block_name,
    blocks_of,
    build_model_table,
    modality_of,
)
from dlradiomics.models.classifiers import CLASSIFIERS, DEFAULT_SELECTION, make_classifier, make_pipeline
from dlradiomics.models.fusion import (
    DLRFusion,
    EarlyFusion,
    MissingBlockWarning,
    StackingFusion,
    WeightedEnsembleFusion,
)
from dlradiomics.models.inner_cv import PatientGroupKFold, patient_groups
from dlradiomics.models.reduction import BoundedPCA
from dlradiomics.models.selectors import (
    CorrelationFilter,
    LassoSelector,
    MannWhitneySelector,
    SelectionFallbackWarning,
)

__all__ = [
    "BLOCK_SEPARATOR",
    "BoundedPCA",
    "CLASSIFIERS",
    "CorrelationFilter",
    "DEFAULT_SELECTION",
    "DLRFusion",
    "EarlyFusion",
    "LassoSelector",
    "META_COLUMNS",
    "MannWhitneySelector",
    "MissingBlockWarning",
    "PatientGroupKFold",
    "SelectionFallbackWarning",
    "StackingFusion",
    "WeightedEnsembleFusion",
    "aggregate_by_patient",
    "block_name",
    "blocks_of",
    "build_model_table",
    "make_classifier",
    "make_pipeline",
    "modality_of",
    "patient_groups",
]

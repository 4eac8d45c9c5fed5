"""Fusion estimators on a modelling table of feature blocks (see :mod:`dlradiomics.models.blocks`).

All are scikit-learn classifiers taking ``fit(X, y)`` with X a DataFrame whose columns are
``"{modality}.{kind}__{feature}"`` and whose index is ``patient_id``; patient groups for every
inner cross-validation come from that index. All expose ``classes_``, ``predict_proba``,
``predict`` (-1 where no prediction is possible), ``block_probabilities(X)`` (per-block
contributions) and ``missing_blocks(X)``.

- :class:`EarlyFusion`: concatenate blocks, select, classify; drops rows lacking a block.
- :class:`WeightedEnsembleFusion`: one model per block, softmax(inner-CV accuracy) weights.
- :class:`StackingFusion`: one model per block, meta-learner on out-of-fold probabilities.
- :class:`DLRFusion`: PCA over radiomic + deep blocks, then one of the three.
"""

from dlradiomics.models.fusion._base import MissingBlockWarning
from dlradiomics.models.fusion.dlr import STRATEGIES, DLRFusion
from dlradiomics.models.fusion.early import EarlyFusion
from dlradiomics.models.fusion.late import WEIGHTINGS, StackingFusion, WeightedEnsembleFusion

__all__ = [
    "DLRFusion",
    "EarlyFusion",
    "MissingBlockWarning",
    "STRATEGIES",
    "StackingFusion",
    "WEIGHTINGS",
    "WeightedEnsembleFusion",
]

"""Fusion estimators on feature blocks (see :mod:`dlradiomics.models.blocks`).

All are scikit-learn binary classifiers taking ``fit(X, y, groups=None)``. X is a modelling
table (columns ``"{modality}.{kind}__{feature}"``, index ``patient_id``) or any array with a
``blocks`` mapping (block -> column names or positions); ``groups`` (routable with
``set_fit_request(groups=True)``) gives the patient of each row for every inner cross-validation,
else ``X.index`` of a table, else one group per row. Any two class labels work. All expose
``classes_``, ``predict_proba``, ``predict`` (NaN / None where no prediction is possible),
``block_probabilities(X)`` (per-block contributions) and ``missing_blocks(X)``.

- :class:`EarlyFusion`: concatenate blocks (optionally each reduced on its own), select, classify;
  drops rows lacking a block.
- :class:`WeightedEnsembleFusion`: one model per block, softmax(inner-CV accuracy) weights.
- :class:`StackingFusion`: one model per block, meta-learner on out-of-fold probabilities.
- :class:`DLRFusion`: PCA of the radiomic and deep blocks (the paper's composition or one
  whole-table PCA), then one of the three.
"""

from dlradiomics.models.fusion._base import MissingBlockWarning
from dlradiomics.models.fusion.dlr import COMPOSITIONS, STRATEGIES, DLRComposition, DLRFusion
from dlradiomics.models.fusion.early import EarlyFusion
from dlradiomics.models.fusion.late import WEIGHTINGS, StackingFusion, WeightedEnsembleFusion

__all__ = [
    "COMPOSITIONS",
    "DLRComposition",
    "DLRFusion",
    "EarlyFusion",
    "MissingBlockWarning",
    "STRATEGIES",
    "StackingFusion",
    "WEIGHTINGS",
    "WeightedEnsembleFusion",
]

"""The exact classes a bundle may hold, and the skops loader each may come with.

A skops file names every object it holds by module and class, and says how to rebuild it (its
"loader"). The list below is what the study grid's models actually hold, found by auditing a
bundle of every classifier, feature source and fusion (`tests/test_bundle_trust.py` checks that
the list is exactly that, `bench/bundle_allowlist_audit.py` audits the whole grid). Entries are
classes, never functions and never module prefixes: a name such as `sklearn.utils._testing.
check_output` (a function re-exported under a trusted-looking module) matches nothing here.

The loader is pinned too. An estimator class arriving as `ObjectNode` is rebuilt with
`cls.__new__` plus its saved attributes, which runs none of its code; the same name arriving as
`ConstructorFromReduceNode` would be *called* with arguments from the file, so it is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

# How skops rebuilds an object: these loaders only build data (containers, arrays) or instances
# through `__new__` and saved state; the rest (FunctionNode, MethodNode, PartialNode,
# OperatorFuncNode, ConstructorFromReduceNode, ...) hand back or call callables and are never allowed.
OBJECT = "ObjectNode"
TYPE = "TypeNode"
CACHED = "CachedNode"  # a second reference to an object already in the file; builds nothing new
# Loaders a class named by the caller (`trusted=`) may come with.
LOADERS_FOR_TRUSTED_CLASSES = frozenset({OBJECT, "TreeNode", "LossNode", TYPE, CACHED})

# Built-in data and numpy values: what every model's attributes are made of.
_NUMPY_SCALARS = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "longdouble", "complex64", "complex128", "str_", "bytes_",
)
_PRIMITIVES = ("builtins.str", "builtins.int", "builtins.float", "builtins.bool", "builtins.NoneType")
DATA_TYPES: Mapping[str, frozenset[str]] = {
    **{name: frozenset({"JsonNode", TYPE}) for name in _PRIMITIVES},
    "builtins.dict": frozenset({"DictNode"}),
    "collections.OrderedDict": frozenset({"DictNode", TYPE}),
    "collections.defaultdict": frozenset({"DefaultDictNode"}),
    "builtins.list": frozenset({"ListNode", TYPE}),
    "builtins.tuple": frozenset({"TupleNode", TYPE}),
    "builtins.set": frozenset({"SetNode", TYPE}),
    "builtins.slice": frozenset({"SliceNode"}),
    "builtins.bytes": frozenset({"BytesNode"}),
    "builtins.bytearray": frozenset({"BytearrayNode"}),
    "numpy.ndarray": frozenset({"NdArrayNode"}),
    "numpy.dtype": frozenset({"DTypeNode"}),
    # random number generators held as `random_state_` (skops rebuilds them from their saved state)
    "numpy.random.mtrand.RandomState": frozenset({"RandomStateNode"}),
    "numpy.random._generator.Generator": frozenset({"RandomGeneratorNode"}),
    **{f"numpy.{name}": frozenset({"NdArrayNode", TYPE}) for name in _NUMPY_SCALARS},
}


def _model_classes() -> list[type]:
    """Every class a fitted dlradiomics model holds (imported here so the names follow the code)."""
    from lightgbm import Booster as LightGBMBooster
    from lightgbm import LGBMClassifier
    from sklearn.calibration import CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration
    from sklearn.decomposition import PCA
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics._dist_metrics import EuclideanDistance64
    from sklearn.neighbors import KDTree, KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.impute import MissingIndicator
    from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier
    from xgboost import Booster as XGBoostBooster
    from xgboost import XGBClassifier

    from dlradiomics.models import (
        BoundedPCA,
        ClinicalEncoder,
        ClinicalEncodingStep,
        CorrelationFilter,
        CorrelationStep,
        DLRFusion,
        EarlyFusion,
        LassoSelector,
        LassoStep,
        MannWhitneySelector,
        MannWhitneyStep,
        PatientGroupKFold,
        PCAStep,
        StackingFusion,
        WeightedEnsembleFusion,
    )

    return [
        # dlradiomics: selectors, reduction, patient-grouped folds, fusion
        MannWhitneySelector, CorrelationFilter, LassoSelector, BoundedPCA, PatientGroupKFold,
        EarlyFusion, WeightedEnsembleFusion, StackingFusion, DLRFusion,
        # the typed selection steps a fusion estimator holds as its `selection` parameter
        MannWhitneyStep, CorrelationStep, LassoStep, PCAStep,
        # the clinical block's preparation (imputation with missing indicators, one-hot categories)
        ClinicalEncodingStep, ClinicalEncoder, MissingIndicator, OneHotEncoder,
        # scikit-learn: the standard pipeline and the classifiers of the registry with their parts
        Pipeline, SimpleImputer, VarianceThreshold, StandardScaler, PCA, LabelEncoder,
        LogisticRegression, SVC, CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration,
        KNeighborsClassifier, KDTree, EuclideanDistance64,
        RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier, ExtraTreeClassifier,
        # gradient boosting libraries
        XGBClassifier, XGBoostBooster, LGBMClassifier, LightGBMBooster,
    ]


def class_name(cls: type) -> str:
    """The name skops records for a class: `module.Class`."""
    return f"{cls.__module__}.{cls.__name__}"


@cache
def allowed_types() -> Mapping[str, frozenset[str]]:
    """Every type a bundle may hold, with the skops loaders it may come with."""
    from sklearn.tree._tree import Tree

    allowed = dict(DATA_TYPES)
    allowed.update({class_name(cls): frozenset({OBJECT}) for cls in _model_classes()})
    # A fitted decision tree's node arrays; skops rebuilds it through its own TreeNode.
    allowed[class_name(Tree)] = frozenset({"TreeNode"})
    return allowed


def permitted(type_name: str, loader: str, trusted: Iterable[str] = ()) -> bool:
    """Whether a type arriving with a loader may be loaded.

    Args:
        type_name: `module.Class` as the skops file names it.
        loader: the skops loader the file asks for.
        trusted: classes the caller named explicitly (their own estimators).
    """
    if loader == CACHED:
        return type_name in allowed_types() or type_name in set(trusted)
    if type_name in set(trusted):
        return loader in LOADERS_FOR_TRUSTED_CLASSES
    return loader in allowed_types().get(type_name, frozenset())

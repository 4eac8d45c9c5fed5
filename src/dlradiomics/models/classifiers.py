"""The seven classifiers of the paper, a registry to build them, and the standard model pipeline.

Defaults are cheap (200 trees or boosting rounds, ``n_jobs=1``: parallelism belongs to the
experiment grid above) and seeded. ``search=True`` wraps a classifier in ``GridSearchCV`` over a
small grid with inner folds grouped by patient (groups read from ``X.index``; see
:mod:`dlradiomics.models.inner_cv`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sklearn.base import BaseEstimator, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from dlradiomics.models.inner_cv import PatientGroupKFold
from dlradiomics.models.selection import (
    CorrelationStep,
    LassoStep,
    MannWhitneyStep,
    SelectionStep,
    parse_selection_step,
)
from dlradiomics.models.shared_fits import pipeline_class


def _xgboost(random_state: int, **params) -> BaseEstimator:
    from xgboost import XGBClassifier  # imported on use: a heavy library most pipelines never build

    defaults = dict(
        n_estimators=200, learning_rate=0.05, max_depth=3, subsample=0.8, colsample_bytree=0.8,
        tree_method="hist", eval_metric="logloss", n_jobs=1, verbosity=0,
    )
    return XGBClassifier(random_state=random_state, **{**defaults, **params})


def _lightgbm(random_state: int, **params) -> BaseEstimator:
    from lightgbm import LGBMClassifier  # imported on use: a heavy library most pipelines never build

    defaults = dict(
        n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=10, subsample=0.8,
        subsample_freq=1, colsample_bytree=0.8, n_jobs=1, verbose=-1,
    )
    return LGBMClassifier(random_state=random_state, **{**defaults, **params})


def _svm(random_state: int, **params) -> BaseEstimator:
    """RBF SVM with Platt-scaled probabilities.

    scikit-learn 1.9 deprecates ``SVC(probability=True)`` for ``CalibratedClassifierCV(SVC(),
    ensemble=False)``; the sigmoid is fitted on out-of-fold decision values of folds grouped by
    patient. Parameters go to the SVC (``C``, ``gamma``, ``kernel``).
    """
    svc = SVC(**{"C": 1.0, "kernel": "rbf", "gamma": "scale", **params}, random_state=random_state)
    return CalibratedClassifierCV(
        svc, method="sigmoid", ensemble=False, cv=PatientGroupKFold(3, random_state=random_state)
    )


@dataclass(frozen=True)
class ClassifierSpec:
    """How to build one registered classifier.

    Args:
        build: factory ``build(random_state, **params) -> estimator``.
        needs_scaling: distance- or penalty-based models need standardised features.
        search_grid: small hyper-parameter grid for ``search=True``.
    """

    build: Callable[..., BaseEstimator]
    needs_scaling: bool
    search_grid: dict[str, list] = field(default_factory=dict)


CLASSIFIER_SPECS: dict[str, ClassifierSpec] = {
    "svm": ClassifierSpec(
        _svm, needs_scaling=True, search_grid={"estimator__C": [0.1, 1.0, 10.0], "estimator__gamma": ["scale", 0.01]}
    ),
    "knn": ClassifierSpec(
        lambda random_state, **p: KNeighborsClassifier(**{"n_neighbors": 15, "weights": "distance", "n_jobs": 1, **p}),
        needs_scaling=True,
        search_grid={"n_neighbors": [5, 15, 31]},
    ),
    "rf": ClassifierSpec(
        lambda random_state, **p: RandomForestClassifier(**{"n_estimators": 200, "n_jobs": 1, **p}, random_state=random_state),
        needs_scaling=False,
        search_grid={"max_depth": [None, 8], "max_features": ["sqrt", 0.3]},
    ),
    "extra_trees": ClassifierSpec(
        lambda random_state, **p: ExtraTreesClassifier(**{"n_estimators": 200, "n_jobs": 1, **p}, random_state=random_state),
        needs_scaling=False,
        search_grid={"max_depth": [None, 8], "max_features": ["sqrt", 0.3]},
    ),
    "xgboost": ClassifierSpec(
        _xgboost, needs_scaling=False, search_grid={"max_depth": [2, 4], "learning_rate": [0.03, 0.1]}
    ),
    "lightgbm": ClassifierSpec(
        _lightgbm, needs_scaling=False, search_grid={"num_leaves": [7, 31], "learning_rate": [0.03, 0.1]}
    ),
    "logistic": ClassifierSpec(
        lambda random_state, **p: LogisticRegression(**{"C": 1.0, "max_iter": 2000, **p}, random_state=random_state),
        needs_scaling=True,
        search_grid={"C": [0.01, 0.1, 1.0, 10.0]},
    ),
}

CLASSIFIERS: tuple[str, ...] = tuple(CLASSIFIER_SPECS)
# The paper's radiomic chain: Mann-Whitney U filter -> Spearman redundancy filter -> LASSO.
DEFAULT_SELECTION: tuple[SelectionStep, ...] = (MannWhitneyStep(), CorrelationStep(), LassoStep())


def _spec(name: str) -> ClassifierSpec:
    if name not in CLASSIFIER_SPECS:
        raise ValueError(f"unknown classifier {name!r}; choose one of {list(CLASSIFIERS)}")
    return CLASSIFIER_SPECS[name]


def make_classifier(name: str, random_state: int = 0, search: bool = False, inner_cv: int = 3, **params) -> BaseEstimator:
    """Build one of the seven registered classifiers.

    Args:
        name: one of :data:`CLASSIFIERS` (``svm``, ``knn``, ``rf``, ``extra_trees``, ``xgboost``,
            ``lightgbm``, ``logistic``).
        random_state: seed of the model (and of the search's inner folds).
        search: wrap in ``GridSearchCV`` (ROC AUC) over the registry's small grid; parameters
            given in ``params`` are fixed and left out of the grid.
        inner_cv: inner folds of the search, grouped by patient (``X.index``).
        **params: parameters overriding the defaults.

    Returns:
        An unfitted scikit-learn classifier (or ``GridSearchCV`` around one).

    Raises:
        ValueError: for an unknown name.
    """
    spec = _spec(name)
    estimator = spec.build(random_state, **params)
    if not search:
        return estimator
    grid = {key: values for key, values in spec.search_grid.items() if key not in params}
    return GridSearchCV(
        estimator,
        grid,
        scoring="roc_auc",
        cv=PatientGroupKFold(inner_cv, random_state=random_state),
        n_jobs=1,
        error_score="raise",
    )


def _selection_steps(
    selection: SelectionStep | str | Sequence[SelectionStep | str] | None, random_state: int
) -> list[tuple[SelectionStep, BaseEstimator]]:
    """The typed steps (text forms such as ``"pca:32"`` read once here) with their unfitted selectors."""
    if selection is None or selection == "none":
        return []
    steps = list(selection) if isinstance(selection, Sequence) and not isinstance(selection, str) else [selection]
    typed = [parse_selection_step(step) if isinstance(step, str) else step for step in steps]
    return [(step, step.build(random_state)) for step in typed]


def make_pipeline(
    classifier: str | BaseEstimator = "logistic",
    selection: SelectionStep | str | Sequence[SelectionStep | str] | None = DEFAULT_SELECTION,
    *,
    random_state: int = 0,
    search: bool = False,
    inner_cv: int = 3,
) -> Pipeline:
    """The standard model: [prepare] -> impute -> drop constant columns -> [scale] -> selectors -> classifier.

    A preparing step (`dlradiomics.models.clinical.ClinicalEncodingStep`) goes first, so it sees
    missing clinical values before anything fills them in. Missing values are then imputed by the
    training median; standardisation is included when the
    classifier needs it (svm, knn, logistic) or a step does (LASSO, PCA). The pipeline outputs
    DataFrames between steps, so the ``patient_id`` index reaches the LASSO's and the search's
    inner folds.

    Args:
        classifier: a name from :data:`CLASSIFIERS` or an unfitted scikit-learn classifier (cloned).
        selection: selection steps in order, typed (``(MannWhitneyStep(0.01), LassoStep())``,
            ``PCAStep(32)``; see :mod:`dlradiomics.models.selection`) or in their text form
            (``["mannwhitney:0.01", "lasso"]``, ``"pca:32"``), or None for no selection.
        random_state: seed of the classifier and of the selectors' inner folds.
        search: hyper-parameter search for a named classifier (see :func:`make_classifier`).
        inner_cv: inner folds of the search.

    Returns:
        An unfitted ``sklearn.pipeline.Pipeline`` ending in the step ``"classifier"``.
    """
    steps = _selection_steps(selection, random_state)
    if isinstance(classifier, str):
        needs_scaling = _spec(classifier).needs_scaling
        model = make_classifier(classifier, random_state=random_state, search=search, inner_cv=inner_cv)
    else:
        needs_scaling = True
        model = clone(classifier)
    if any(step.needs_scaling for step, _ in steps):
        needs_scaling = True
    # Inside `sharing_fits` (a grid cell) identical step fits are shared; elsewhere a plain Pipeline.
    pipeline = pipeline_class()([*_preprocessing_steps(steps, scale=needs_scaling), ("classifier", model)])
    return pipeline.set_output(transform="pandas")


def _preprocessing_steps(steps: list[tuple[SelectionStep, BaseEstimator]], *, scale: bool) -> list[tuple[str, BaseEstimator]]:
    # A preparing step (the clinical block's encoder) sees the raw values, before imputation.
    preparing = [(step.name, selector) for step, selector in steps if getattr(step, "prepares", False)]
    selecting = [(step.name, selector) for step, selector in steps if not getattr(step, "prepares", False)]
    return [
        *preparing,
        ("impute", SimpleImputer(strategy="median")),
        ("drop_constant", VarianceThreshold(threshold=0.0)),
        *([("scale", StandardScaler())] if scale else []),
        *selecting,
    ]


def make_preprocessing(
    selection: SelectionStep | str | Sequence[SelectionStep | str] | None, *, random_state: int = 0
) -> Pipeline:
    """The standard model's steps without a classifier: impute -> drop constant columns -> scale -> selectors.

    Used to reduce one feature block on its own (e.g. PCA per modality before early fusion).

    Args:
        selection: selection steps, typed or in their text form, as for :func:`make_pipeline`.
        random_state: seed of the selectors.

    Returns:
        An unfitted transformer ``Pipeline`` with pandas output.
    """
    steps = _selection_steps(selection, random_state)
    return pipeline_class()(_preprocessing_steps(steps, scale=True)).set_output(transform="pandas")

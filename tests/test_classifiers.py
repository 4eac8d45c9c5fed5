"""The classifier registry, the standard pipeline and the patient-grouped inner folds."""

from __future__ import annotations

import ast
import inspect
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV

from dlradiomics.models import (
    CLASSIFIERS,
    CorrelationStep,
    LassoStep,
    MannWhitneyStep,
    PatientGroupKFold,
    PCAStep,
    make_classifier,
    make_pipeline,
    parse_selection_step,
)


def easy_table(n_patients: int = 80, images_per_patient: int = 2, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows are images of patients; three of twelve columns carry the label."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(rng.integers(0, 2, n_patients), images_per_patient)
    values = rng.normal(size=(len(labels), 12))
    values[:, :3] += 2.0 * labels[:, None]
    values[::9, 5] = np.nan
    patients = pd.Index(np.repeat([f"P{i:03d}" for i in range(n_patients)], images_per_patient), name="patient_id")
    return pd.DataFrame(values, index=patients, columns=[f"US.radiomic__f{i}" for i in range(12)]), labels


def test_registry_names_the_seven_classifiers_of_the_paper():
    assert set(CLASSIFIERS) == {"svm", "knn", "rf", "extra_trees", "xgboost", "lightgbm", "logistic"}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_each_classifier_learns_an_easy_problem_in_the_pipeline(name):
    X, y = easy_table()
    train = X.index < "P060"
    pipeline = make_pipeline(name, selection=("mannwhitney", "correlation"))
    pipeline.fit(X[train], y[train])
    proba = pipeline.predict_proba(X[~train])
    assert proba.shape == (int((~train).sum()), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y[~train], proba[:, 1]) > 0.85


@pytest.mark.parametrize("name", ["rf", "xgboost", "lightgbm", "svm"])
def test_seeded_classifiers_repeat_exactly(name):
    X, y = easy_table()
    first = make_pipeline(name, selection=None, random_state=3).fit(X, y).predict_proba(X)
    second = clone(make_pipeline(name, selection=None, random_state=3)).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)


def test_scaling_only_where_the_model_or_a_step_needs_it():
    assert "scale" in make_pipeline("knn", selection=None).named_steps
    assert "scale" in make_pipeline("svm", selection=None).named_steps
    assert "scale" not in make_pipeline("rf", selection=None).named_steps
    assert "scale" in make_pipeline("rf", selection=["pca:4"]).named_steps


def test_unknown_classifier_and_selection_are_clear_errors():
    with pytest.raises(ValueError, match="unknown classifier 'tabnet'"):
        make_classifier("tabnet")
    with pytest.raises(ValueError, match="bad selection step 'boruta'"):
        make_pipeline("logistic", selection=["boruta"])


def test_selection_steps_are_typed_and_the_text_form_reads_into_them():
    assert parse_selection_step("mannwhitney:0.01") == MannWhitneyStep(0.01)
    assert parse_selection_step("correlation") == CorrelationStep(0.9)
    assert parse_selection_step("pca:7") == PCAStep(7)
    with pytest.raises(ValueError, match="bad selection step 'pca:seven'"):
        parse_selection_step("pca:seven")
    typed = make_pipeline("rf", selection=(MannWhitneyStep(0.01), PCAStep(7)), random_state=4)
    assert list(typed.named_steps) == ["impute", "drop_constant", "scale", "mannwhitney", "pca", "classifier"]
    assert typed.named_steps["mannwhitney"].p_threshold == 0.01
    pca = typed.named_steps["pca"]
    assert (pca.n_components, pca.random_state) == (7, 4)
    assert pca.get_params() == make_pipeline(
        "rf", selection=["mannwhitney:0.01", "pca:7"], random_state=4).named_steps["pca"].get_params()
    assert make_pipeline("rf", selection=LassoStep(), random_state=4).named_steps["lasso"].random_state == 4


def test_params_override_defaults():
    assert make_classifier("rf", n_estimators=17).n_estimators == 17
    assert make_classifier("knn", n_neighbors=3).n_neighbors == 3


def test_pipeline_keeps_the_patient_index_for_inner_folds():
    X, y = easy_table()
    pipeline = make_pipeline("logistic", selection=("mannwhitney", "lasso")).fit(X, y)
    transformed = pipeline[:-1].transform(X)
    assert transformed.index.equals(X.index)
    assert not transformed.isna().any().any()


def test_search_uses_patient_grouped_folds_and_finds_parameters():
    X, y = easy_table()
    pipeline = make_pipeline("logistic", selection=None, search=True).fit(X, y)
    search = pipeline.named_steps["classifier"]
    assert isinstance(search, GridSearchCV)
    assert isinstance(search.cv, PatientGroupKFold)
    assert search.best_params_["C"] in (0.01, 0.1, 1.0, 10.0)


def test_patient_group_kfold_never_splits_a_patient_and_shrinks_to_the_data():
    X, y = easy_table(n_patients=30, images_per_patient=3)
    folds = list(PatientGroupKFold(5, random_state=0).split(X, y))
    assert len(folds) == 5
    covered = np.concatenate([test for _, test in folds])
    assert sorted(covered) == list(range(len(X)))
    for train, test in folds:
        assert not set(X.index[train]) & set(X.index[test])
    five_patients = X.iloc[:15]
    labels = np.repeat([0, 1, 0, 1, 0], 3)
    assert len(list(PatientGroupKFold(5).split(five_patients, labels))) == 2  # two malignant patients
    with pytest.raises(ValueError, match="at least 2 patients of each class"):
        list(PatientGroupKFold(5).split(five_patients, np.repeat([0, 1, 0, 0, 0], 3)))


def test_l1_logistic_spelled_with_l1_ratio_gives_the_deprecated_penalty_l1_fit_exactly():
    # scikit-learn 1.8 deprecates penalty="l1" for l1_ratio=1.0; the benches' L1 logistic must fit
    # without that warning and give the very same model (liblinear solves the same L1 problem)
    X, y = easy_table()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        current = make_pipeline(make_classifier("logistic", search=True, l1_ratio=1.0, solver="liblinear"),
                                selection=None).fit(X, y)
    if "deprecated" not in str(inspect.signature(LogisticRegression).parameters["penalty"].default):
        pytest.skip("this scikit-learn has no deprecated penalty parameter to compare with")
    with pytest.warns(FutureWarning, match="penalty"), warnings.catch_warnings():
        # the old spelling beside the new default l1_ratio=0.0 also warns that the two disagree
        warnings.filterwarnings("ignore", message="Inconsistent values", category=UserWarning)
        deprecated = make_pipeline(make_classifier("logistic", search=True, penalty="l1", solver="liblinear"),
                                   selection=None).fit(X, y)
    assert current[-1].best_params_ == deprecated[-1].best_params_
    np.testing.assert_array_equal(current[-1].best_estimator_.coef_, deprecated[-1].best_estimator_.coef_)
    np.testing.assert_array_equal(current.predict_proba(X), deprecated.predict_proba(X))
    assert np.sum(current[-1].best_estimator_.coef_ == 0) > 0  # an L1 fit: some coefficients are exactly zero


def test_no_code_of_ours_passes_the_deprecated_logistic_penalty_keyword():
    # the spelling scikit-learn removes in 1.10; l1_ratio (or C=np.inf for no penalty) replaces it
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted([*(root / "src").rglob("*.py"), *(root / "bench").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and any(keyword.arg == "penalty" for keyword in node.keywords):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []

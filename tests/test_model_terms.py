"""What a fitted model reads (its selected features and their weights), and the grid's record of it per outer fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from dlradiomics.evaluation import cross_validate_patients, run_grid
from dlradiomics.models import WeightedEnsembleFusion, build_model_table, make_pipeline, model_terms
from dlradiomics.models.terms import COEFFICIENT_PER_SD, IMPURITY_IMPORTANCE, NO_WEIGHT
from evaluation_data import make_feature_tables, make_image_table


@pytest.fixture(scope="module")
def image_table():
    return make_image_table(n_patients=90, n_features=6, signal=1.5, seed=4)


def test_a_logistic_coefficient_is_the_change_in_log_odds_per_sd_of_its_feature(image_table):
    X, y = image_table
    model = make_pipeline("logistic").fit(X, y)
    terms = model_terms(model)
    assert set(terms["weight_kind"]) == {COEFFICIENT_PER_SD}
    assert {"f0", "f1"} <= set(terms["feature"])  # the two informative features survive selection
    # Independent of how the weight was read: move one feature by one training SD (the scaler's
    # population SD) from the training means and read the change in the model's log odds.
    centre = X.mean().to_frame().T
    for term in terms.itertuples():
        moved = centre.copy()
        moved[term.column] += X[term.column].std(ddof=0)
        change = logit(model.predict_proba(moved)[0, 1]) - logit(model.predict_proba(centre)[0, 1])
        assert change == pytest.approx(term.weight, rel=1e-6)


def test_tree_models_report_importances_and_svm_no_weight(image_table):
    X, y = image_table
    forest = model_terms(make_pipeline("rf", None).fit(X, y))
    assert set(forest["weight_kind"]) == {IMPURITY_IMPORTANCE}
    assert forest["weight"].sum() == pytest.approx(1.0)
    assert set(forest.nlargest(2, "weight")["feature"]) == {"f0", "f1"}
    svm = model_terms(make_pipeline("svm").fit(X, y))
    assert set(svm["weight_kind"]) == {NO_WEIGHT} and svm["weight"].isna().all()


def test_late_fusion_reports_each_blocks_pipeline():
    tables = make_feature_tables(n_patients=80, modalities=("US", "MG"), seed=2)
    X, y, _ = build_model_table(tables, ["US", "MG"], ["radiomic"], "patient")
    terms = model_terms(WeightedEnsembleFusion("logistic", inner_cv=3).fit(X, y))
    assert set(terms["block"]) == {"US.radiomic", "MG.radiomic"}
    assert all(column.startswith(f"{block}__") for block, column in zip(terms["block"], terms["column"]))
    assert not terms["derived"].any()


def test_pca_components_are_marked_derived(image_table):
    X, y = image_table
    terms = model_terms(make_pipeline("logistic", "pca:3").fit(X, y))
    assert len(terms) == 3 and terms["derived"].all()


def test_cross_validation_returns_each_outer_folds_terms(image_table):
    X, y = image_table
    predictions, terms = cross_validate_patients(make_pipeline("logistic"), X, y, return_terms=True)
    assert set(terms["fold"]) == set(predictions["fold"])
    # the informative features are selected in every outer fold
    for feature in ("f0", "f1"):
        assert terms.loc[terms["feature"] == feature, "fold"].nunique() == predictions["fold"].nunique()


def test_the_grid_records_what_every_configuration_read_in_every_fold():
    tables = make_feature_tables(n_patients=70, modalities=("US",), seed=1)
    grid = run_grid(tables, sources=["radiomic"], classifiers=["logistic", "rf"], fusions=["early"],
                    n_boot=20, seed=0)
    completed = grid.completed
    assert len(completed) == 2
    for _, configuration in completed.iterrows():
        terms = grid.terms_of(configuration)
        assert terms["fold"].nunique() == grid.fold_table["fold"].nunique()
        assert (terms["classifier"] == configuration["classifier"]).all()
    assert isinstance(grid.terms, pd.DataFrame) and np.isfinite(grid.terms["weight"]).all()

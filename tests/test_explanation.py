"""Explaining the chosen model: weights, odds ratios per SD, selection frequency, and captions without "nan%"."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dlradiomics.report.explanation import (
    ModelExplanation,
    case_caption,
    explanation_section,
    feature_table,
    selection_frequency,
)


def _terms(rows, kind="coefficient per SD"):
    return pd.DataFrame([{"block": "US.radiomic", "feature": feature, "column": f"US.radiomic__{feature}",
                          "weight": weight, "weight_kind": kind, "derived": False, **extra}
                         for feature, weight, extra in rows])


def test_features_show_odds_ratios_and_how_often_each_was_selected_across_folds():
    final = _terms([("shape", 1.2, {}), ("texture", -0.4, {})])
    folds = _terms([("shape", 1.0, {"repeat": 0, "fold": 0}), ("shape", 1.4, {"repeat": 0, "fold": 1}),
                    ("shape", 1.1, {"repeat": 0, "fold": 2}), ("texture", -0.2, {"repeat": 0, "fold": 1}),
                    ("energy", 0.3, {"repeat": 0, "fold": 2})])
    table = feature_table(ModelExplanation("radiomic | US | single | logistic", final, folds, n_outer_fits=3,
                                           n_candidates=102))
    assert list(table["feature"]) == ["shape", "texture", "energy"]  # final model first, by |weight|
    shape = table.iloc[0]
    assert shape["odds ratio per SD (final model)"] == pytest.approx(math.exp(1.2))
    assert shape["selected in outer folds"] == "3/3"
    assert shape["mean coefficient per SD across outer folds"] == pytest.approx((1.0 + 1.4 + 1.1) / 3)
    energy = table.iloc[2]
    assert energy["in final model"] == "no" and energy["selected in outer folds"] == "1/3"
    assert math.isnan(energy["coefficient per SD (final model)"])
    frequency = selection_frequency(folds, 3).set_index("feature")
    assert frequency.loc["texture", "selected_fraction"] == pytest.approx(1 / 3)


def test_pca_components_are_not_listed_as_features():
    final = pd.concat([_terms([("shape", 0.5, {})]),
                       _terms([("pca0", 0.9, {})]).assign(derived=True, block="US.deep")], ignore_index=True)
    table = feature_table(ModelExplanation("dlr", final, final.iloc[:0].assign(repeat=0, fold=0), 1, 10))
    assert list(table["feature"]) == ["shape"]


def test_captions_say_n_a_for_a_flat_heatmap_never_nan():
    caption = case_caption("FP", "P7", "US", 0.91, 0.40, (float("nan"), 0.12))
    assert "nan%" not in caption and " nan" not in caption.lower()
    assert caption.startswith("FP (false positive), patient P7, US: p(malignant) 0.91 >= threshold 0.40")
    assert "Grad-CAM mass in lesion n/a (flat heatmap) (lesion area 12%)" in caption


def test_a_model_of_principal_components_only_gets_no_sentence_about_a_feature_table_it_does_not_have():
    components = _terms([("pca0", 0.9, {}), ("pca1", -0.3, {})]).assign(derived=True, block="DLR.deep")
    explanation = ModelExplanation("dlr | US | ensemble | logistic", components,
                                   components.assign(repeat=0, fold=0), n_outer_fits=1, n_candidates=40)
    text = " ".join(explanation_section(explanation).paragraphs)
    assert "2 principal component(s) of DLR.deep" in text
    assert "Selection frequency" not in text
    named = ModelExplanation("radiomic | US | single | logistic", _terms([("shape", 1.2, {})]),
                             _terms([("shape", 1.0, {"repeat": 0, "fold": 0})]), n_outer_fits=1, n_candidates=10)
    assert "Selection frequency counts the outer-fold fits" in " ".join(explanation_section(named).paragraphs)

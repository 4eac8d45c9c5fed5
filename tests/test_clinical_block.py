"""The clinical block: encoded inside training folds, joined to imaging rows, never a reason to drop a patient."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import skops.io

from dlradiomics.evaluation import grid_configurations
from dlradiomics.models import (
    CLINICAL_BLOCK,
    ClinicalEncoder,
    ClinicalEncodingStep,
    EarlyFusion,
    ModelConfiguration,
    StackingFusion,
    build_estimator,
    build_model_table,
    make_pipeline,
)

BIRADS = (("birads", ("2", "3", "4", "5")),)


def _table(birads, age, radiomic=None) -> pd.DataFrame:
    index = pd.Index([f"p{k}" for k in range(len(birads))], name="patient_id")
    radiomic = np.arange(len(birads), dtype=float) if radiomic is None else radiomic
    return pd.DataFrame({"US.radiomic__a": radiomic, "clinical__birads": birads, "clinical__age": age}, index=index)


def test_the_encoder_learns_from_training_rows_only_and_flags_what_it_fills_in():
    train = _table([0, 1, 1, np.nan, 2], [40.0, np.nan, 60.0, 70.0, 80.0])
    encoder = ClinicalEncoder(categories=BIRADS).set_output(transform="pandas").fit(train)
    new = _table([3, np.nan, 2], [np.nan, 50.0, 90.0], radiomic=np.array([7.0, 8.0, 9.0]))
    out = encoder.transform(new)
    assert list(out.columns) == ["US.radiomic__a", "clinical__age", "clinical__age=missing", "clinical__birads=2",
                                 "clinical__birads=3", "clinical__birads=4", "clinical__birads=missing"]
    assert out.index.equals(new.index)
    # The radiomic column passes through untouched.
    np.testing.assert_array_equal(out["US.radiomic__a"], [7.0, 8.0, 9.0])
    # Age: the median of the training ages present (40, 60, 70, 80 -> 65), and the indicator.
    np.testing.assert_array_equal(out["clinical__age"], [65.0, 50.0, 90.0])
    np.testing.assert_array_equal(out["clinical__age=missing"], [1.0, 0.0, 0.0])
    # BI-RADS 5 (code 3) never occurred in training: it gets no column, so its row reads zero in each.
    np.testing.assert_array_equal(out.loc["p0", ["clinical__birads=2", "clinical__birads=3", "clinical__birads=4"]],
                                  [0.0, 0.0, 0.0])
    # A missing BI-RADS is filled with the most frequent training category (3, code 1) and flagged.
    np.testing.assert_array_equal(out.loc["p1", ["clinical__birads=3", "clinical__birads=missing"]], [1.0, 1.0])
    np.testing.assert_array_equal(out.loc["p2", ["clinical__birads=4", "clinical__birads=missing"]], [1.0, 0.0])


def test_an_encoder_fitted_on_other_rows_learns_other_values():
    # The medians come from the rows it is fitted on: no value of a test row reaches them.
    encoder = ClinicalEncoder().set_output(transform="pandas")
    first = encoder.fit(_table([0, 1], [10.0, 20.0])).transform(_table([np.nan], [np.nan]))
    second = encoder.fit(_table([0, 1], [30.0, 50.0])).transform(_table([np.nan], [np.nan]))
    assert first["clinical__age"].iloc[0] == 15.0 and second["clinical__age"].iloc[0] == 40.0


def test_the_encoder_goes_first_in_a_pipeline():
    pipeline = make_pipeline("logistic", (ClinicalEncodingStep(BIRADS), "mannwhitney:0.5"))
    assert [name for name, _ in pipeline.steps][:2] == ["clinical", "impute"]
    assert pipeline.steps[-2][0] == "mannwhitney"


def _cohort(n_patients: int = 60, seed: int = 0) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """Image-level radiomic and clinical tables of a US cohort (two images per patient)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_patients) % 2
    birads = np.where(labels == 1, rng.integers(2, 4, n_patients), rng.integers(0, 3, n_patients)).astype(float)
    radiomic, clinical = [], []
    for patient in range(n_patients):
        for image in ("a", "b"):
            meta = {"roi_id": f"p{patient}/US/{image}", "patient_id": f"p{patient}", "modality": "US",
                    "image": "", "mask": "", "label": int(labels[patient])}
            radiomic.append({**meta, "f0": rng.normal() + labels[patient], "f1": rng.normal()})
            clinical.append({**meta, "birads": birads[patient], "age": 50.0 + patient})
    return {"radiomic": pd.DataFrame(radiomic), "clinical": pd.DataFrame(clinical)}, pd.Series(labels)


def test_clinical_values_join_imaging_rows_and_add_none_of_their_own():
    tables, _ = _cohort(6)
    # p0's second image has no radiomic features (extraction failed): it must not come back as a
    # row holding clinical values only.
    tables["radiomic"] = tables["radiomic"][tables["radiomic"]["roi_id"] != "p0/US/b"]
    X, y, groups = build_model_table(tables, ["US"], ["radiomic", "clinical"], level="image")
    assert len(X) == 11
    assert list(X.columns) == ["US.radiomic__f0", "US.radiomic__f1", "clinical__birads", "clinical__age"]
    assert X.loc["p3", "clinical__age"].tolist() == [53.0, 53.0]
    alone, _, _ = build_model_table(tables, ["US"], ["clinical"], level="image")
    assert len(alone) == 12 and list(alone.columns) == ["clinical__birads", "clinical__age"]


def test_at_patient_level_the_clinical_block_appears_once():
    tables, _ = _cohort(6)
    for kind in ("radiomic", "clinical"):
        mg = tables[kind][tables[kind]["roi_id"].str.endswith("/a")].assign(modality="MG")
        mg["roi_id"] = mg["roi_id"].str.replace("/US/", "/MG/")
        tables[kind] = pd.concat([tables[kind], mg], ignore_index=True)
    X, _, _ = build_model_table(tables, ["US", "MG"], ["radiomic", "clinical"], level="patient")
    assert [c for c in X.columns if c.startswith(CLINICAL_BLOCK)] == ["clinical__birads", "clinical__age"]
    assert len(X) == 6


def test_a_patient_whose_rows_disagree_on_a_clinical_variable_is_named():
    tables, _ = _cohort(6)
    clinical = tables["clinical"]
    clinical.loc[clinical["roi_id"] == "p4/US/b", "birads"] = 3.0
    clinical.loc[clinical["roi_id"] == "p4/US/a", "birads"] = 1.0
    with pytest.raises(ValueError, match="patient p4: the clinical variable 'clinical__birads' differs"):
        build_model_table(tables, ["US"], ["clinical"], level="patient")


def test_imaging_with_the_clinical_block_is_a_two_block_model():
    to_run, skipped = grid_configurations(["clinical", "radiomic+clinical"], [("US",)], ["early", "ensemble",
                                                                                          "stacking"], ["logistic"])
    assert [(c.source, c.fusion) for c in to_run] == [("clinical", "single"), ("radiomic+clinical", "early"),
                                                      ("radiomic+clinical", "ensemble"),
                                                      ("radiomic+clinical", "stacking")]
    assert {c.source for c, _ in skipped} == {"clinical"}
    assert ModelConfiguration("radiomic+clinical", ("US", "MG"), "early", "svm").blocks == (
        "US.radiomic", "MG.radiomic", "clinical")


def test_a_patient_missing_a_clinical_value_is_imputed_not_dropped():
    tables, _ = _cohort(40)
    tables["clinical"].loc[tables["clinical"]["patient_id"] == "p7", "birads"] = np.nan
    X, y, _ = build_model_table(tables, ["US"], ["radiomic", "clinical"], level="image")
    selections = {"radiomic+clinical": (ClinicalEncodingStep(BIRADS), "mannwhitney:0.5")}
    for fusion in ("early", "ensemble", "stacking"):
        model = build_estimator(ModelConfiguration("radiomic+clinical", ("US",), fusion, "logistic"),
                                selections=selections)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # early fusion would warn about a dropped patient
            model.fit(X, y)
        probability = model.predict_proba(X.loc[["p7"]])[:, 1]
        assert np.isfinite(probability).all()
    assert isinstance(build_estimator(ModelConfiguration("radiomic+clinical", ("US",), "early", "logistic")),
                      EarlyFusion)


def test_the_clinical_variable_carries_the_signal_it_has():
    # BI-RADS separates the classes here and the radiomic block hardly: stacking must lean on it.
    tables, _ = _cohort(80, seed=3)
    X, y, _ = build_model_table(tables, ["US"], ["radiomic", "clinical"], level="image")
    X["US.radiomic__f0"] = np.random.default_rng(0).normal(size=len(X))
    model = StackingFusion(selection=(ClinicalEncodingStep(BIRADS),), inner_cv=3).fit(X, y)
    coefficients = dict(zip(model.meta_feature_names_, model.meta_model_[-1].coef_[0]))
    assert coefficients["clinical__proba"] > 2 * abs(coefficients["US.radiomic__proba"])


def test_a_fitted_clinical_model_round_trips_through_skops():
    tables, _ = _cohort(30)
    X, y, _ = build_model_table(tables, ["US"], ["radiomic", "clinical"], level="image")
    X.iloc[0, 2] = np.nan
    model = build_estimator(ModelConfiguration("radiomic+clinical", ("US",), "early", "logistic"),
                            selections={"radiomic+clinical": (ClinicalEncodingStep(BIRADS),)}).fit(X, y)
    loaded = skops.io.loads(skops.io.dumps(model), trusted=skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))

"""`predict` with clinical variables: the bundle records how they were read, new patients' manifests give
them, and what the model has to fill in (missing, unknown category, not a number) is flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlradiomics.api import predict_manifest
from dlradiomics.bundle import load_bundle, save_bundle
from dlradiomics.cohort.patient_values import PatientValueError, patient_values
from dlradiomics.models import ModelConfiguration, build_estimator, build_model_table
from dlradiomics.study.clinical import ClinicalSpec, add_clinical_table, clinical_table
from dlradiomics.study.features import compute_feature_tables
from dlradiomics.study.settings import ClinicalSettings

from synthetic_rois import synthetic_cohort_table

N_TRAINING_ROIS = 24  # 12 patients, two images each
SETTINGS = ClinicalSettings(columns=["birads", "age", "device"], categorical=["birads", "device"],
                            per_patient={"birads": "max"})


def _clinical_columns(table: pd.DataFrame) -> pd.DataFrame:
    patient = table["patient_id"].str[1:].astype(int)
    table = table.copy()
    # BI-RADS follows the label (2-3 benign, 4-5 malignant); the first image of a patient reads one lower.
    table["birads"] = 2 + 2 * table["label"] + (patient // 2) % 2 - (table.index % 2 == 0)
    table["age"] = 40.0 + patient
    table["device"] = np.where(patient % 3 == 0, "Toshiba", "GE")
    return table


@pytest.fixture(scope="module")
def clinical_bundle(tmp_path_factory):
    """A radiomic + clinical early-fusion model on generated ROIs, saved with the clinical record."""
    folder = tmp_path_factory.mktemp("predict-clinical")
    table = _clinical_columns(synthetic_cohort_table(folder / "images", N_TRAINING_ROIS + 8))
    training, new = table.iloc[:N_TRAINING_ROIS], table.iloc[N_TRAINING_ROIS:].reset_index(drop=True)
    store = folder / "store"
    spec = ClinicalSpec.learn(SETTINGS, training)
    features = compute_feature_tables(training, ["radiomic"], store_dir=store, progress=False)
    tables = add_clinical_table(features.tables, training, spec)
    X, y, _ = build_model_table(tables, ["US"], ["radiomic", "clinical"], level="image")
    configuration = ModelConfiguration("radiomic+clinical", ("US",), "early", "logistic")
    model = build_estimator(configuration, selections={"radiomic+clinical": (spec.encoding_step(),)}).fit(X, y)
    bundle_dir = save_bundle(folder / "bundle", model, training_table=X, threshold=0.5, modalities=["US"],
                             feature_kinds=["radiomic", "clinical"], level="image",
                             settings={"clinical": spec.record()})
    return load_bundle(bundle_dir), model, spec, new, store, folder


def test_the_study_spec_reads_categories_and_rules(clinical_bundle):
    _, _, spec, _, _, _ = clinical_bundle
    assert spec.categorical == {"birads": ("2", "3", "4", "5"), "device": ("GE", "Toshiba")}
    assert spec.rule_for("birads") == "max" and spec.rule_for("age") == "same"
    assert ClinicalSpec.from_record(spec.record()) == spec


def test_predict_reads_clinical_values_from_the_manifest_as_training_did(clinical_bundle, tmp_path):
    bundle, model, spec, new, store, _ = clinical_bundle
    new.drop(columns="label").to_csv(tmp_path / "new.csv", index=False)
    predictions = predict_manifest(bundle, tmp_path / "new.csv", store_dir=store).set_index("patient_id")
    features = compute_feature_tables(new, ["radiomic"], store_dir=store, progress=False)
    X, _, _ = build_model_table(add_clinical_table(features.tables, new, spec), ["US"], ["radiomic", "clinical"],
                                level="image")
    expected = pd.Series(model.predict_proba(X)[:, 1], index=X.index).groupby(level=0).mean()
    np.testing.assert_allclose(predictions.loc[expected.index, "probability"], expected)
    # (Radiomic and age values beyond a 12-patient training range may be flagged; nothing is filled in.)
    assert not predictions["warnings"].str.contains("filled in|not among|not a number").any()
    assert (predictions["reason"] == "").all()


def test_what_the_model_fills_in_is_flagged_and_a_disagreement_is_a_reason(clinical_bundle, tmp_path):
    bundle, _, _, new, store, _ = clinical_bundle
    new = new.drop(columns="label")
    patients = sorted(new["patient_id"].unique())
    new.loc[new["patient_id"] == patients[0], "birads"] = np.nan            # missing
    new.loc[new["patient_id"] == patients[1], "device"] = "Philips"         # a device never seen in training
    new["age"] = new["age"].astype(object)
    new.loc[new["patient_id"] == patients[2], "age"] = "unknown"            # not a number
    new.loc[new.index[new["patient_id"] == patients[3]][0], "age"] = 99.0   # two ages for one patient
    new.to_csv(tmp_path / "new.csv", index=False)
    predictions = predict_manifest(bundle, tmp_path / "new.csv", store_dir=store).set_index("patient_id")
    first, second, third, fourth = (predictions.loc[p] for p in patients)
    assert "birads: missing, filled in by the model" in first["warnings"] and np.isfinite(first["probability"])
    assert "device: 'Philips' is not among the training categories (GE, Toshiba)" in second["warnings"]
    assert np.isfinite(second["probability"])
    assert "age: 'unknown' is not a number" in third["warnings"] and np.isfinite(third["probability"])
    assert "column 'age' differs between the patient's images" in fourth["reason"]
    assert np.isnan(fourth["probability"])


def test_a_manifest_without_a_clinical_column_still_predicts_and_says_so(clinical_bundle, tmp_path):
    bundle, _, _, new, store, _ = clinical_bundle
    new.drop(columns=["label", "age"]).to_csv(tmp_path / "new.csv", index=False)
    predictions = predict_manifest(bundle, tmp_path / "new.csv", store_dir=store)
    assert predictions["warnings"].str.contains("age: no such column in the manifest").all()
    assert predictions["probability"].notna().all()


def test_training_values_must_read_cleanly_naming_the_patient():
    rows = pd.DataFrame({"roi_id": ["a/US/1", "a/US/2", "b/US/1"], "patient_id": ["a", "a", "b"],
                         "modality": "US", "image": "", "mask": "", "label": [0, 0, 1],
                         "birads": [3, 4, 5], "age": ["50", "50", "sixty"]})
    with pytest.raises(PatientValueError, match=r"patient a: column 'birads' differs .*\(3, 4\)"):
        ClinicalSpec.learn(ClinicalSettings(columns=["birads"], categorical=["birads"]), rows)
    spec = ClinicalSpec.learn(ClinicalSettings(columns=["birads", "age"], per_patient={"birads": "max"}), rows)
    with pytest.raises(PatientValueError, match="patient b: column 'age' holds 'sixty', not a number"):
        clinical_table(rows, spec, training=True)
    assert patient_values(rows, "birads", rule="max").to_dict() == {"a": 4, "b": 5}
    assert patient_values(rows, "birads", rule="mean").to_dict() == {"a": 3.5, "b": 5.0}

"""Model bundles: round trip, refusal of pickles and untrusted types, version check."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.bundle import MODEL_FILE, METADATA_FILE, BundleError, load_bundle, save_bundle


def _patient_table(n_patients: int = 30, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    labels = pd.Series(np.arange(n_patients) % 2, name="label")
    features = rng.normal(size=(n_patients, 4)) + labels.to_numpy()[:, None]
    index = pd.Index([f"p{number:03d}" for number in range(n_patients)], name="patient_id")
    table = pd.DataFrame(features, index=index, columns=[f"US.radiomic__f{column}" for column in range(4)])
    return table, labels.set_axis(index)


class ForeignEstimator(LogisticRegression):
    """A class from outside the package: a bundle holding it must be refused."""


def _fitted(table: pd.DataFrame, labels: pd.Series):
    return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()).fit(table, labels)


def _save(path, model, table):
    return save_bundle(path, model, threshold=0.5, feature_columns=table.columns, modalities=["US"],
                       feature_kinds=["radiomic"], level="patient", settings={"backbone": None})


def test_loaded_bundle_predicts_like_the_fitted_model(tmp_path):
    table, labels = _patient_table()
    model = _fitted(table, labels)
    bundle = load_bundle(_save(tmp_path / "bundle", model, table))
    new_patients, _ = _patient_table(seed=1)
    predictions = bundle.predict_table(new_patients)
    np.testing.assert_allclose(predictions["probability"].to_numpy(), model.predict_proba(new_patients)[:, 1])
    assert (predictions["predicted_class"] == (predictions["probability"] >= 0.5)).all()
    assert list(predictions.index) == list(new_patients.index)


def test_columns_in_another_order_are_realigned(tmp_path):
    table, labels = _patient_table()
    model = _fitted(table, labels)
    bundle = load_bundle(_save(tmp_path / "bundle", model, table))
    shuffled = table[table.columns[::-1]]
    np.testing.assert_allclose(bundle.predict_table(shuffled)["probability"], model.predict_proba(table)[:, 1])


def test_image_rows_are_averaged_per_patient(tmp_path):
    table, labels = _patient_table()
    model = _fitted(table, labels)
    bundle = load_bundle(_save(tmp_path / "bundle", model, table))
    two_images = table.iloc[[0, 1]].set_axis(pd.Index(["same", "same"], name="patient_id"))
    expected = model.predict_proba(table.iloc[[0, 1]])[:, 1].mean()
    assert bundle.predict_table(two_images).loc["same", "probability"] == pytest.approx(expected)


def test_a_pickled_model_file_is_refused(tmp_path):
    table, labels = _patient_table()
    folder = _save(tmp_path / "bundle", _fitted(table, labels), table)
    (folder / MODEL_FILE).write_bytes(pickle.dumps(_fitted(table, labels)))
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(folder)


def test_an_untrusted_type_is_refused(tmp_path):
    table, labels = _patient_table()
    folder = _save(tmp_path / "bundle", _fitted(table, labels), table)
    skops.io.dump(ForeignEstimator().fit(table, labels), folder / MODEL_FILE)
    with pytest.raises(BundleError, match="ForeignEstimator"):
        load_bundle(folder)


def test_saving_an_untrusted_type_is_refused(tmp_path):
    table, labels = _patient_table()
    with pytest.raises(BundleError, match="ForeignEstimator"):
        _save(tmp_path / "bundle", ForeignEstimator().fit(table, labels), table)


def test_an_unknown_format_version_is_refused(tmp_path):
    table, labels = _patient_table()
    folder = _save(tmp_path / "bundle", _fitted(table, labels), table)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    metadata["format_version"] = 99
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="format version 99"):
        load_bundle(folder)


def test_other_library_versions_give_a_warning(tmp_path):
    table, labels = _patient_table()
    folder = _save(tmp_path / "bundle", _fitted(table, labels), table)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    metadata["versions"]["scikit-learn"] = "0.1"
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.warns(UserWarning, match="scikit-learn 0.1"):
        load_bundle(folder)


def test_tensors_round_trip(tmp_path):
    table, labels = _patient_table()
    head = {"head.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
    folder = save_bundle(tmp_path / "bundle", _fitted(table, labels), threshold=0.3, feature_columns=table.columns,
                         modalities=["US"], feature_kinds=["deep"], level="patient", tensors=head)
    bundle = load_bundle(folder)
    np.testing.assert_array_equal(bundle.tensors["head.weight"], head["head.weight"])
    assert bundle.threshold == 0.3


def test_a_table_without_the_model_columns_is_an_error(tmp_path):
    table, labels = _patient_table()
    bundle = load_bundle(_save(tmp_path / "bundle", _fitted(table, labels), table))
    with pytest.raises(BundleError, match="none of the model"):
        bundle.predict_table(table.rename(columns=lambda column: column.replace("US", "MG")))


def test_late_fusion_bundle_scores_patients_missing_a_modality_and_reports_contributions(tmp_path):
    from dlradiomics.models import WeightedEnsembleFusion

    rng = np.random.default_rng(4)
    n_patients = 40
    labels = pd.Series(np.arange(n_patients) % 2)
    index = pd.Index([f"p{number:03d}" for number in range(n_patients)], name="patient_id")
    us = rng.normal(size=(n_patients, 3)) + labels.to_numpy()[:, None]
    mg = rng.normal(size=(n_patients, 3)) + 0.5 * labels.to_numpy()[:, None]
    table = pd.DataFrame(np.hstack([us, mg]), index=index,
                         columns=[f"US.radiomic__f{i}" for i in range(3)] + [f"MG.radiomic__f{i}" for i in range(3)])
    table.iloc[:8, 3:] = np.nan  # eight patients without mammography
    model = WeightedEnsembleFusion(classifier="logistic", selection=None, inner_cv=3).fit(table, labels.set_axis(index))
    folder = save_bundle(tmp_path / "bundle", model, threshold=0.5, feature_columns=table.columns,
                         modalities=["US", "MG"], feature_kinds=["radiomic"], level="patient")
    only_us = table.iloc[:8, :3]  # new patients with ultrasound only; MG columns absent altogether
    predictions = load_bundle(folder).predict_table(only_us)
    assert predictions["probability"].notna().all()
    np.testing.assert_allclose(predictions["probability"], model.predict_proba(table.iloc[:8])[:, 1])
    assert predictions["contribution_MG.radiomic"].isna().all()
    assert predictions["contribution_US.radiomic"].notna().all()


def test_a_patient_without_a_probability_gets_no_class(tmp_path):
    # Early fusion cannot score a patient lacking a modality; NaN >= threshold is False, so
    # without care the patient would be reported as benign (class 0) with no probability.
    import warnings

    from dlradiomics.models import EarlyFusion, MissingBlockWarning

    table, labels = _patient_table()
    mg = table.rename(columns=lambda column: column.replace("US.", "MG."))
    both = pd.concat([table, mg + 0.1], axis=1)
    both.iloc[:5, 4:] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingBlockWarning)
        model = EarlyFusion("logistic", selection=None).fit(both, labels)
        bundle = load_bundle(save_bundle(tmp_path / "bundle", model, threshold=0.5, feature_columns=both.columns,
                                         modalities=["US", "MG"], feature_kinds=["radiomic"], level="patient"))
        predictions = bundle.predict_table(both)
    unscored = predictions["probability"].isna()
    assert unscored.sum() == 5
    assert predictions.loc[unscored, "predicted_class"].isna().all()
    scored = predictions[~unscored]
    assert (scored["predicted_class"] == (scored["probability"] >= 0.5).astype(int)).all()

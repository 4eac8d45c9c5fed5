"""Model bundles: round trip, integrity of every file, the schema of bundle.json, and the warnings on
inputs unlike the training data. (Crafted model files: tests/test_bundle_trust.py.)"""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from dlradiomics.bundle import (
    METADATA_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
    BundleError,
    TrainingIntensityProfile,
    load_bundle,
    save_bundle,
)
from dlradiomics.bundle.profiles import RANGE_MARGIN
from dlradiomics.io import RoiImage

from bundle_tables import fitted_pipeline, patient_table
from skops_craft import edit_metadata, reseal


class ForeignEstimator(LogisticRegression):
    """A class from outside the package: a bundle holding it must be refused."""


def _save(path, model, table, **options):
    return save_bundle(path, model, training_table=table, threshold=0.5, modalities=["US"],
                       feature_kinds=["radiomic"], level="image", settings={"backbone": None}, **options)


@pytest.fixture
def bundle_folder(tmp_path):
    table, labels = patient_table()
    tensors = {"US.weight": np.arange(8, dtype=np.float32).reshape(2, 4), "US.bias": np.zeros(2, dtype=np.float32)}
    return _save(tmp_path / "bundle", fitted_pipeline(table, labels), table, tensors=tensors)


# --- round trip -------------------------------------------------------------------------------------

def test_loaded_bundle_predicts_like_the_fitted_model(tmp_path):
    table, labels = patient_table()
    model = fitted_pipeline(table, labels)
    bundle = load_bundle(_save(tmp_path / "bundle", model, table))
    new_patients, _ = patient_table(seed=1)
    predictions = bundle.predict_table(new_patients)
    np.testing.assert_allclose(predictions["probability"].to_numpy(), model.predict_proba(new_patients)[:, 1])
    assert (predictions["predicted_class"] == (predictions["probability"] >= 0.5)).all()
    assert list(predictions.index) == list(new_patients.index)


def test_columns_in_another_order_are_realigned(tmp_path):
    table, labels = patient_table()
    model = fitted_pipeline(table, labels)
    bundle = load_bundle(_save(tmp_path / "bundle", model, table))
    shuffled = table[table.columns[::-1]]
    np.testing.assert_allclose(bundle.predict_table(shuffled)["probability"], model.predict_proba(table)[:, 1])


def test_image_rows_are_averaged_per_patient(tmp_path):
    table, labels = patient_table()
    model = fitted_pipeline(table, labels)
    bundle = load_bundle(_save(tmp_path / "bundle", model, table))
    two_images = table.iloc[[0, 1]].set_axis(pd.Index(["same", "same"], name="patient_id"))
    expected = model.predict_proba(table.iloc[[0, 1]])[:, 1].mean()
    assert bundle.predict_table(two_images).loc["same", "probability"] == pytest.approx(expected)


def test_tensors_and_settings_round_trip(bundle_folder):
    bundle = load_bundle(bundle_folder)
    np.testing.assert_array_equal(bundle.tensors["US.weight"], np.arange(8, dtype=np.float32).reshape(2, 4))
    assert bundle.threshold == 0.5 and bundle.level == "image" and bundle.settings == {"backbone": None}


def test_the_recorded_training_ranges_match_the_training_table(tmp_path):
    table, labels = patient_table()
    bundle = load_bundle(_save(tmp_path / "bundle", fitted_pipeline(table, labels), table))
    column = table.columns[2]
    recorded = bundle.metadata.feature_ranges[column]
    values = np.sort(table[column].to_numpy())
    assert (recorded.minimum, recorded.maximum) == (values[0], values[-1])
    # 0.5th percentile by the definition (linear interpolation between order statistics)
    position = 0.005 * (len(values) - 1)
    lower = values[int(position)] + (position - int(position)) * (values[int(position) + 1] - values[int(position)])
    assert recorded.low == pytest.approx(lower)


def test_a_table_without_the_model_columns_is_an_error(tmp_path):
    table, labels = patient_table()
    bundle = load_bundle(_save(tmp_path / "bundle", fitted_pipeline(table, labels), table))
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
    folder = save_bundle(tmp_path / "bundle", model, training_table=table, threshold=0.5, modalities=["US", "MG"],
                         feature_kinds=["radiomic"], level="patient")
    only_us = table.iloc[:8, :3]  # new patients with ultrasound only; MG columns absent altogether
    predictions = load_bundle(folder).predict_table(only_us)
    assert predictions["probability"].notna().all()
    np.testing.assert_allclose(predictions["probability"], model.predict_proba(table.iloc[:8])[:, 1])
    assert predictions["contribution_MG.radiomic"].isna().all()
    assert predictions["contribution_US.radiomic"].notna().all()
    assert (predictions["warnings"] == "").all()  # late fusion scores without a block by design


def test_a_patient_without_a_probability_gets_no_class(tmp_path):
    # Early fusion cannot score a patient lacking a modality; NaN >= threshold is False, so
    # without care the patient would be reported as benign (class 0) with no probability.
    from dlradiomics.models import EarlyFusion, MissingBlockWarning

    table, labels = patient_table()
    mg = table.rename(columns=lambda column: column.replace("US.", "MG."))
    both = pd.concat([table, mg + 0.1], axis=1)
    both.iloc[:5, 4:] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingBlockWarning)
        model = EarlyFusion("logistic", selection=None).fit(both, labels)
        bundle = load_bundle(save_bundle(tmp_path / "bundle", model, training_table=both, threshold=0.5,
                                         modalities=["US", "MG"], feature_kinds=["radiomic"], level="patient"))
        predictions = bundle.predict_table(both)
    unscored = predictions["probability"].isna()
    assert unscored.sum() == 5
    assert predictions.loc[unscored, "predicted_class"].isna().all()
    scored = predictions[~unscored]
    assert (scored["predicted_class"] == (scored["probability"] >= 0.5).astype(int)).all()


# --- warnings on inputs unlike the training data ---------------------------------------------------

def test_out_of_range_and_missing_values_are_flagged_per_patient(tmp_path):
    table, labels = patient_table()
    bundle = load_bundle(_save(tmp_path / "bundle", fitted_pipeline(table, labels), table))
    new = table.iloc[:4].copy()
    span = table["US.radiomic__f1"].max() - table["US.radiomic__f1"].min()
    new.iloc[0, 1] = table["US.radiomic__f1"].max() + 2 * RANGE_MARGIN * span    # beyond the margin
    new.iloc[1, 1] = table["US.radiomic__f1"].max() + RANGE_MARGIN / 2 * span    # within it: not flagged
    new.iloc[2, 3] = np.nan
    warned = bundle.predict_table(new)["warnings"]
    assert "US.radiomic__f1" in warned.iloc[0] and "outside the training range" in warned.iloc[0]
    assert warned.iloc[1] == "" and warned.iloc[3] == ""
    assert "1 of 4 feature values missing" in warned.iloc[2]


def test_image_rows_of_one_patient_share_one_warning_text(tmp_path):
    table, labels = patient_table()
    bundle = load_bundle(_save(tmp_path / "bundle", fitted_pipeline(table, labels), table))
    rows = table.iloc[[0, 1]].set_axis(pd.Index(["same", "same"], name="patient_id"))
    rows.iloc[1, 0] = 1e6
    assert "US.radiomic__f0 = 1e+06" in bundle.predict_table(rows).loc["same", "warnings"]


def _image_profile(pixels: np.ndarray, dtype: str, bits: int | None):
    roi = RoiImage(image=pixels, mask=np.ones(pixels.shape, dtype=np.uint8), spacing=(1.0, 1.0), image_path="i.png",
                   mask_path="m.png", source_dtype=dtype, source_bit_depth=bits)
    return roi.intensity_profile()


def test_a_training_intensity_profile_names_images_unlike_the_training_ones():
    rng = np.random.default_rng(0)
    profile = TrainingIntensityProfile.of([_image_profile(rng.integers(0, 256, size=(32, 32)), "uint8", 8)
                                           for _ in range(5)])
    assert profile.dtypes == ["uint8"] and profile.bit_depths == [8] and profile.maximum <= 255
    same_kind = rng.integers(10, 240, size=(32, 32)).astype(float)
    assert profile.deviations(_image_profile(same_kind, "uint8", 8)) == []
    # a 16-bit copy, read on the 8-bit scale by io's convention: same numbers, other storage
    assert profile.deviations(_image_profile(same_kind, "uint16", 16)) == ["stored as uint16 (16-bit), unlike the "
                                                                          "training images"]
    # 8-bit values saved as 16-bit without scaling: read as value * 255 / 65535, nearly black
    unscaled = profile.deviations(_image_profile(same_kind * 255 / 65535, "uint16", 16))
    assert any("under half of the darkest training image" in text for text in unscaled)
    # another device's calibrated units
    assert any("beyond the training range" in text for text in profile.deviations(_image_profile(same_kind * 40,
                                                                                                 "int16", None)))


# --- integrity of the files -------------------------------------------------------------------------

def test_a_changed_model_file_is_refused_naming_it(bundle_folder):
    data = bytearray((bundle_folder / MODEL_FILE).read_bytes())
    data[-30] ^= 0x01
    (bundle_folder / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.skops: refused: its contents changed"):
        load_bundle(bundle_folder)


def test_a_changed_weights_file_is_refused_naming_it(bundle_folder):
    from safetensors.numpy import save_file

    save_file({"US.weight": np.ones((2, 4), dtype=np.float32), "US.bias": np.zeros(2, dtype=np.float32)},
              str(bundle_folder / WEIGHTS_FILE))
    with pytest.raises(BundleError, match=r"weights\.safetensors: refused: its contents changed"):
        load_bundle(bundle_folder)


def test_a_missing_file_is_refused_naming_it(bundle_folder):
    (bundle_folder / WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match=r"weights\.safetensors: missing"):
        load_bundle(bundle_folder)


def test_an_extra_file_is_refused_naming_it(bundle_folder):
    (bundle_folder / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match=r"notes\.txt: refused: a file the bundle does not list"):
        load_bundle(bundle_folder)


def test_a_pickled_model_file_is_refused(bundle_folder):
    table, labels = patient_table()
    (bundle_folder / MODEL_FILE).write_bytes(pickle.dumps(fitted_pipeline(table, labels)))
    with pytest.raises(BundleError, match="contents changed"):
        load_bundle(bundle_folder)
    reseal(bundle_folder)  # even with matching hashes
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(bundle_folder)


def test_an_untrusted_type_is_refused(bundle_folder):
    table, labels = patient_table()
    skops.io.dump(ForeignEstimator().fit(table, labels), bundle_folder / MODEL_FILE)
    reseal(bundle_folder)
    with pytest.raises(BundleError, match="ForeignEstimator"):
        load_bundle(bundle_folder)


def test_saving_an_untrusted_type_is_refused(tmp_path):
    table, labels = patient_table()
    with pytest.raises(BundleError, match="ForeignEstimator"):
        _save(tmp_path / "bundle", ForeignEstimator().fit(table, labels), table)
    assert not (tmp_path / "bundle").exists()


def test_saving_into_a_folder_with_other_files_is_refused(tmp_path):
    table, labels = patient_table()
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "report.html").write_text("")
    with pytest.raises(BundleError, match="report.html"):
        _save(tmp_path / "bundle", fitted_pipeline(table, labels), table)


def test_saving_again_replaces_the_bundle_and_drops_stale_weights(bundle_folder):
    table, labels = patient_table()
    _save(bundle_folder, fitted_pipeline(table, labels), table)
    assert not (bundle_folder / WEIGHTS_FILE).exists()
    assert load_bundle(bundle_folder).tensors == {}


# --- bundle.json: versions, schema and digest -------------------------------------------------------

@pytest.mark.parametrize(("changes", "message"), [
    ({"threshold": float("nan")}, r"threshold: Input should be a finite number"),
    ({"threshold": 1.5}, r"threshold: Input should be less than or equal to 1"),
    ({"threshold": None}, r"threshold: Input should be a valid number"),
    ({"feature_columns": []}, r"feature_columns: List should have at least 1 item"),
    ({"feature_kinds": ["texture"]}, r"feature_kinds\.0: Input should be 'radiomic', 'deep' or 'clinical'"),
    ({"level": "voxel"}, r"level: Input should be 'image' or 'patient'"),
    ({"modalities": ["US", "MG"]}, r"level: 'image' rows hold one modality"),
    ({"feature_columns": ["US.radiomic__f0", "MG.deep__f1", "US.radiomic__f2", "US.radiomic__f3"]},
     r"feature_columns: \['MG.deep__f1'\]"),
    ({"files": {"model.skops": "0" * 64, "run.sh": "0" * 64}}, r"files\.run\.sh"),
    ({"format_version": "2"}, r"format_version must be an integer"),
    ({"format_version": 2.0}, r"format_version must be an integer"),
    ({"format_version": 1}, r"format version 1 was written by an older dlradiomics.*Run the study again"),
    ({"format_version": 99}, r"format version 99 is newer"),
    ({"surprise": 1}, r"surprise: Extra inputs are not permitted"),
])
def test_a_hand_edited_field_is_refused_naming_it(bundle_folder, changes, message):
    edit_metadata(bundle_folder, **changes)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_folder)


def test_columns_that_disagree_with_the_model_are_refused(bundle_folder):
    document = json.loads((bundle_folder / METADATA_FILE).read_text())
    dropped = document["feature_columns"].pop()
    del document["feature_ranges"][dropped]
    edit_metadata(bundle_folder, feature_columns=document["feature_columns"], feature_ranges=document["feature_ranges"])
    with pytest.raises(BundleError, match=r"feature_columns: the model was fitted on 4 columns \(feature_names_in_\)"):
        load_bundle(bundle_folder)


@pytest.mark.parametrize("changes", [{"threshold": 0.0}, {"settings": {"radiomics_params": {"setting": {"binWidth": 5}}}}])
def test_a_valid_looking_edit_is_refused_by_the_digest(bundle_folder, changes):
    edit_metadata(bundle_folder, reseal_digest=False, **changes)
    with pytest.raises(BundleError, match="changed after the bundle was written"):
        load_bundle(bundle_folder)


def test_a_repeated_key_is_refused(bundle_folder):
    text = (bundle_folder / METADATA_FILE).read_text()
    (bundle_folder / METADATA_FILE).write_text(text.replace('"threshold":', '"threshold": 0.0, "threshold":', 1))
    with pytest.raises(BundleError, match=r"\['threshold'\] appear more than once"):
        load_bundle(bundle_folder)


def test_saving_an_invalid_threshold_is_refused_naming_it(tmp_path):
    table, labels = patient_table()
    with pytest.raises(BundleError, match="threshold: Input should be a finite number"):
        save_bundle(tmp_path / "bundle", fitted_pipeline(table, labels), training_table=table, threshold=float("nan"),
                    modalities=["US"], feature_kinds=["radiomic"], level="image")


def test_saving_a_model_fitted_on_other_columns_is_refused(tmp_path):
    table, labels = patient_table()
    with pytest.raises(BundleError, match="feature_names_in_"):
        _save(tmp_path / "bundle", fitted_pipeline(table, labels), table.iloc[:, :3])


def test_other_library_versions_give_a_warning(bundle_folder):
    document = json.loads((bundle_folder / METADATA_FILE).read_text())
    document["versions"]["scikit-learn"] = "0.1"
    edit_metadata(bundle_folder, versions=document["versions"])
    with pytest.warns(UserWarning, match="scikit-learn 0.1"):
        load_bundle(bundle_folder)


def test_the_bundle_imports_no_study_report_or_cli_anywhere():
    # Module-level and function-level imports alike: the bundle predicts tables, the study makes them.
    import ast
    from pathlib import Path

    import dlradiomics.bundle

    forbidden = ("dlradiomics.study", "dlradiomics.report", "dlradiomics.cli", "dlradiomics.cohort")
    found = []
    for path in Path(dlradiomics.bundle.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {name}" for name in names if name.startswith(forbidden)]
    assert found == []

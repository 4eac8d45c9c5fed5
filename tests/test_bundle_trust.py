"""Bundles load no code: crafted skops files are refused before anything is built, the allowlist is
exactly what the grid's models hold, and a user's own class loads only when named."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from typer.testing import CliRunner

from dlradiomics.bundle import MODEL_FILE, BundleError, classes_beyond_allowlist, load_bundle, save_bundle
from dlradiomics.bundle.allowlist import DATA_TYPES, allowed_types
from dlradiomics.bundle.audit import schema_nodes
from dlradiomics.cli import app
from dlradiomics.models import (
    CLASSIFIERS,
    ClinicalEncodingStep,
    CorrelationStep,
    LassoStep,
    MannWhitneyStep,
    ModelConfiguration,
    PCAStep,
    build_estimator,
    build_model_table,
)

from bundle_tables import fitted_pipeline, patient_table
from skops_craft import (
    check_output_node,
    command_creating,
    crafted_root,
    read_skops,
    reseal,
    skops_file,
    with_hidden_attribute,
)


def _genuine_bundle(folder, model=None, **options):
    table, labels = patient_table(40)
    model = model if model is not None else fitted_pipeline(table, labels)
    save_bundle(folder, model, training_table=table, threshold=0.5, modalities=["US"], feature_kinds=["radiomic"],
                level="image", **options)
    return folder, model, table


# --- the attack of issue 8 -------------------------------------------------------------------------

def test_the_crafted_root_node_is_a_live_attack(tmp_path):
    # Control: skops itself runs the command once the name is trusted (as the old prefix list did),
    # so the refusals below are refusals of a working exploit, not of a malformed file.
    marker = tmp_path / "ran"
    payload = crafted_root(command_creating(marker))
    assert skops.io.get_untrusted_types(data=payload) == ["sklearn.utils._testing.check_output"]
    skops.io.loads(payload, trusted=["sklearn.utils._testing.check_output"])
    assert marker.exists()


def test_a_function_under_a_trusted_module_as_root_is_refused_before_any_call(tmp_path):
    folder, _, _ = _genuine_bundle(tmp_path / "bundle")
    marker = tmp_path / "ran"
    (folder / MODEL_FILE).write_bytes(crafted_root(command_creating(marker)))
    reseal(folder)  # a hostile author ships matching hashes
    with pytest.raises(BundleError, match=r"sklearn\.utils\._testing\.check_output \(as ConstructorFromReduceNode\)"):
        load_bundle(folder)
    assert not marker.exists()


def _hidden_attack(tmp_path):
    """A genuine bundle whose pipeline carries the attack as an extra attribute, resealed by its author."""
    folder, model, table = _genuine_bundle(tmp_path / "bundle")
    marker = tmp_path / "ran"
    payload = with_hidden_attribute((folder / MODEL_FILE).read_bytes(), check_output_node(command_creating(marker)))
    (folder / MODEL_FILE).write_bytes(payload)
    reseal(folder)
    return folder, marker, model, table


def test_the_attack_hidden_in_a_genuine_pipeline_is_live_and_refused(tmp_path):
    folder, marker, model, table = _hidden_attack(tmp_path)
    # Control: trusted as skops reports it, the doctored pipeline runs the command and still predicts.
    payload = (folder / MODEL_FILE).read_bytes()
    doctored = skops.io.loads(payload, trusted=skops.io.get_untrusted_types(data=payload))
    assert marker.exists()
    np.testing.assert_allclose(doctored.predict_proba(table), model.predict_proba(table))
    marker.unlink()

    with pytest.raises(BundleError, match="check_output"):
        load_bundle(folder)
    assert not marker.exists()


def test_the_command_refuses_a_crafted_bundle_without_running_it(tmp_path):
    folder, marker, _, _ = _hidden_attack(tmp_path)
    (tmp_path / "new.csv").write_text("patient_id,modality,image,mask\n")
    outcome = CliRunner().invoke(app, ["predict", str(folder), str(tmp_path / "new.csv"), "--out", str(tmp_path / "out")])
    assert outcome.exit_code == 2
    assert "check_output" in outcome.output and "Traceback" not in outcome.output
    assert not marker.exists()
    # Naming it is refused too: a function never loads, whatever the caller trusts.
    outcome = CliRunner().invoke(app, ["predict", str(folder), str(tmp_path / "new.csv"), "--out", str(tmp_path / "out"),
                                       "--trust", "sklearn.utils._testing.check_output"])
    assert outcome.exit_code == 2 and "not a class" in outcome.output and not marker.exists()


@pytest.mark.parametrize("node", [
    # an allowed class, but asked to be *called* with arguments from the file
    {"__class__": "Pipeline", "__module__": "sklearn.pipeline", "__loader__": "ConstructorFromReduceNode",
     "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": []}},
    # functions and bound methods, under modules skops or we trust
    {"__class__": "system", "__module__": "os", "__loader__": "FunctionNode"},
    {"__class__": "load", "__module__": "numpy", "__loader__": "FunctionNode"},
    {"__class__": "eval", "__module__": "builtins", "__loader__": "TypeNode"},
    # an allowed name arriving through the array loader, which calls it on the array's contents
    {"__class__": "Pipeline", "__module__": "sklearn.pipeline", "__loader__": "NdArrayNode", "type": "numpy",
     "file": "x.npy"},
    # a node whose names are not text
    {"__class__": ["x"], "__module__": "os", "__loader__": "ObjectNode"},
], ids=["allowed-class-called", "os.system", "numpy.load", "eval-as-type", "class-as-array", "non-text-name"])
def test_smuggled_nodes_are_refused(tmp_path, node):
    folder, _, _ = _genuine_bundle(tmp_path / "bundle")
    (folder / MODEL_FILE).write_bytes(with_hidden_attribute((folder / MODEL_FILE).read_bytes(), node))
    reseal(folder)
    with pytest.raises(BundleError, match="refused"):
        load_bundle(folder)


def test_a_compressed_or_malformed_archive_is_refused(tmp_path):
    import io
    import zipfile

    folder, _, _ = _genuine_bundle(tmp_path / "bundle")
    schema, members = read_skops((folder / MODEL_FILE).read_bytes())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", json.dumps(schema))
        for name, data in members.items():
            archive.writestr(name, data)
    for payload, message in [(buffer.getvalue(), "compressed"), (skops_file({"protocol": 2}), "refused"),
                             (b"PK\x03\x04 truncated", "not a skops file"), (b"\x80\x04K\x01.", "pickle")]:
        (folder / MODEL_FILE).write_bytes(payload)
        reseal(folder)
        with pytest.raises(BundleError, match=message):
            load_bundle(folder)


def test_a_deeply_nested_schema_is_refused_not_crashing(tmp_path):
    folder, _, _ = _genuine_bundle(tmp_path / "bundle")
    (folder / MODEL_FILE).write_bytes(b"PK" + b"")  # placeholder replaced below
    nested = "[" * 100_000 + "]" * 100_000
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", nested)
    (folder / MODEL_FILE).write_bytes(buffer.getvalue())
    reseal(folder)
    with pytest.raises(BundleError, match="refused"):
        load_bundle(folder)


# --- the allowlist is what the grid's models hold ----------------------------------------------------

def _feature_tables(n_patients: int = 40) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(1)
    tables = {}
    for kind, width in (("radiomic", 6), ("deep", 8)):
        rows = []
        for patient in range(n_patients):
            for modality in ("US", "MG"):
                label = patient % 2
                rows.append({"roi_id": f"p{patient}/{modality}/a", "patient_id": f"p{patient}", "modality": modality,
                             "image": "", "mask": "", "label": label,
                             **{f"f{k}": rng.normal() + label * (k < 2) for k in range(width)}})
        tables[kind] = pd.DataFrame(rows)
    # Clinical variables: a categorical code and a number, each missing for some patients.
    clinical = tables["radiomic"][["roi_id", "patient_id", "modality", "image", "mask", "label"]].copy()
    patient = clinical["patient_id"].str[1:].astype(int)
    clinical["birads"] = np.where(patient % 7 == 0, np.nan, (patient % 4).astype(float))
    clinical["age"] = np.where(patient % 5 == 0, np.nan, 40.0 + patient)
    tables["clinical"] = clinical
    return tables


# Every classifier once (single radiomic model: the three selectors), then every source and fusion
# once; together they hold every class a grid model can hold (the whole grid: bench/bundle_allowlist_audit.py).
REPRESENTATIVE = [ModelConfiguration("radiomic", ("US",), "single", name) for name in CLASSIFIERS] + [
    ModelConfiguration("deep", ("US",), "single", "logistic"),
    ModelConfiguration("radiomic", ("US", "MG"), "early", "logistic"),
    ModelConfiguration("radiomic", ("US", "MG"), "ensemble", "logistic"),
    ModelConfiguration("deep", ("US", "MG"), "stacking", "logistic"),
    ModelConfiguration("dlr", ("US",), "early", "logistic"),
    ModelConfiguration("dlr", ("US", "MG"), "ensemble", "logistic"),
    ModelConfiguration("radiomic+clinical", ("US",), "stacking", "logistic"),
]


@pytest.fixture(scope="module")
def grid_bundles(tmp_path_factory):
    tables = _feature_tables()
    folders = {}
    for configuration in REPRESENTATIVE:
        kinds = list(configuration.kinds)
        level = configuration.level
        X, y, _ = build_model_table(tables, list(configuration.modalities), kinds, level=level)
        # Typed selection steps, as a study passes them (fusion estimators keep them as a parameter).
        selections = {"radiomic": (MannWhitneyStep(0.5), CorrelationStep(0.9), LassoStep()),
                      "deep": (PCAStep(3),), "dlr": (PCAStep(3),),
                      "radiomic+clinical": (ClinicalEncodingStep((("birads", ("2", "3", "4", "5")),)),
                                            MannWhitneyStep(0.5))}
        estimator = build_estimator(configuration, selections=selections, dlr_components=4, inner_cv=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = estimator.fit(X, y)
        folder = tmp_path_factory.mktemp("grid") / "bundle"
        save_bundle(folder, model, training_table=X, threshold=0.5, modalities=list(configuration.modalities),
                    feature_kinds=kinds, level=level)
        folders[configuration.label] = (folder, model, X)
    return folders


@pytest.mark.parametrize("configuration", [c.label for c in REPRESENTATIVE])
def test_every_kind_of_grid_bundle_loads_and_predicts_like_its_model(grid_bundles, configuration):
    folder, model, X = grid_bundles[configuration]
    bundle = load_bundle(folder)
    expected = pd.Series(model.predict_proba(X)[:, 1], index=X.index.astype(str)).groupby(level=0).mean()
    np.testing.assert_allclose(bundle.predict_table(X)["probability"].loc[expected.index], expected)


def test_the_allowlist_is_exactly_what_grid_models_hold(grid_bundles):
    held: dict[str, set[str]] = {}
    for folder, _, _ in grid_bundles.values():
        schema, _ = read_skops((folder / MODEL_FILE).read_bytes())
        for name, loader in schema_nodes(schema):
            held.setdefault(name, set()).add(loader)
    classes = {name: loaders for name, loaders in held.items() if name not in DATA_TYPES}
    listed = {name: set(loaders) for name, loaders in allowed_types().items() if name not in DATA_TYPES}
    assert classes == listed  # nothing missing (a grid model would be refused), nothing spare
    assert not any(loader in {"FunctionNode", "MethodNode", "PartialNode"} for loaders in held.values()
                   for loader in loaders)


# --- a user's own estimator class --------------------------------------------------------------------

def test_a_model_of_allowlisted_classes_needs_no_trust():
    table, labels = patient_table(40)
    assert classes_beyond_allowlist(fitted_pipeline(table, labels)) == []


def test_a_users_own_class_loads_only_when_each_class_is_named(tmp_path):
    table, labels = patient_table(40)
    model = make_pipeline(SimpleImputer(), HistGradientBoostingClassifier(max_iter=5)).fit(table, labels)
    with pytest.raises(BundleError, match="HistGradientBoostingClassifier"):
        _genuine_bundle(tmp_path / "refused", model)
    own = classes_beyond_allowlist(model)
    assert "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier" in own
    folder, _, _ = _genuine_bundle(tmp_path / "bundle", model, trusted=own)
    for left_out in own:  # the helper names exactly what a loader needs: each name is required
        with pytest.raises(BundleError, match=left_out.rpartition(".")[2]):
            load_bundle(folder, trusted=[name for name in own if name != left_out])

    with pytest.raises(BundleError, match="HistGradientBoostingClassifier"):
        load_bundle(folder)
    with pytest.raises(BundleError, match="TreePredictor") as refusal:  # naming one class trusts that class only
        load_bundle(folder, trusted=["sklearn.ensemble.HistGradientBoostingClassifier"])  # public alias resolved
    assert "HistGradientBoostingClassifier (as" not in str(refusal.value)
    bundle = load_bundle(folder, trusted=own)
    np.testing.assert_allclose(bundle.predict_table(table)["probability"], model.predict_proba(table)[:, 1])


@pytest.mark.parametrize(("name", "message"), [
    ("sklearn.", "name one class exactly"), ("sklearn.*", "name one class exactly"), ("*", "name one class exactly"),
    ("sklearn", "name one class exactly"), ("os.system; rm", "name one class exactly"), ("", "name one class exactly"),
    ("sklearn.utils._testing.check_output", "not a class"), ("os.system", "not a class"),
    ("no_such_package.Model", "cannot be imported")])
def test_trust_takes_exact_class_names_only(tmp_path, name, message):
    folder, _, _ = _genuine_bundle(tmp_path / "bundle")
    with pytest.raises(BundleError, match=message):
        load_bundle(folder, trusted=[name])

"""The hostile corpus through the real commands: no traceback, every broken row named, every good row processed.

`manifest check`, `qa`, `extract`, `run` and `predict` run in-process through typer's CliRunner
(the same click machinery, boundary included, as the installed command) over the corpus of
``corpus.py``; every broken whole file is tried with every command that reads such a file.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml
from corpus import N_GOOD_PATIENTS, build_corpus, cheapest_study
from typer.testing import CliRunner

from dlradiomics.cli import app
from dlradiomics.cli.boundary import EXIT_KNOWN_PROBLEM, EXIT_UNEXPECTED

runner = CliRunner()


def invoke(*words, expect: int | None = None):
    """Run a command and check that nothing escaped the boundary."""
    result = runner.invoke(app, [str(word) for word in words])
    assert "Traceback" not in result.output, result.output
    assert result.exit_code != EXIT_UNEXPECTED, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if expect is not None:
        assert result.exit_code == expect, result.output
    return result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("hostile"))


def _good_patients(corpus) -> set[str]:
    """Patients with a row that every command can use (the good ones and the odd-but-valid cases)."""
    patients = set(corpus.good["patient_id"])
    patients |= {case.patient for case in corpus.row_cases if case.good_rows}
    return patients


def _broken(corpus, *, qa_only: bool = False):
    return [case for case in corpus.row_cases if not case.good_rows and case.qa_only == qa_only]


def _assert_named(text: str, case, rows: list[int]) -> None:
    """A broken case is named by one of its rows (and its patient, where it has one)."""
    found = any(re.search(rf"\brow {row}\b", text) for row in rows)
    assert found, f"{case.name}: none of rows {rows} named"
    if case.patient:
        assert case.patient in text, f"{case.name}: patient {case.patient} not named"


def test_the_corpus_has_30_kinds_of_broken_rows_and_10_broken_files(corpus):
    assert len([case for case in corpus.row_cases if not case.good_rows]) >= 30
    assert len({case.name for case in corpus.whole_files}) >= 10


def test_manifest_check_names_every_row_problem_it_can_see_without_images(corpus):
    result = invoke("manifest", "check", corpus.manifest, expect=1)
    rows = corpus.row_numbers()
    for case in corpus.row_cases:
        if case.seen_without_images and not case.good_rows:
            _assert_named(result.output, case, rows[case.name])
            if case.column:
                assert f"column {case.column}" in result.output


def test_manifest_check_with_images_names_every_broken_row_with_its_column(corpus):
    result = invoke("manifest", "check", corpus.manifest, "--check-images", expect=1)
    rows = corpus.row_numbers()
    lines = result.output.splitlines()
    for case in _broken(corpus):
        named = [line for line in lines if any(re.search(rf"\brow {row}\b", line) for row in rows[case.name])]
        assert named, f"{case.name} not named"
        if case.column:
            assert any(f"column {case.column}" in line for line in named), (case.name, named)
    good = len(corpus.good) + sum(case.good_rows for case in corpus.row_cases)
    qa_only = len(_broken(corpus, qa_only=True))
    assert f"{good + qa_only} good rows" in result.output


def test_qa_names_every_broken_row_and_checks_every_readable_one(corpus, tmp_path):
    result = invoke("qa", corpus.manifest, "--out", tmp_path / "qa", expect=0)
    rows = corpus.row_numbers()
    for case in _broken(corpus) + _broken(corpus, qa_only=True):
        _assert_named(result.output, case, rows[case.name])
    table = pd.read_csv(tmp_path / "qa" / "qa.csv", keep_default_na=False)
    assert _good_patients(corpus) <= set(table["patient_id"])
    flagged = dict(zip(table["patient_id"], table["flags"]))
    for patient in _good_patients(corpus):
        assert "unreadable" not in flagged[patient] and "duplicate" not in flagged[patient], (patient, flagged[patient])
    expected_flags = {"X_full_frame_mask": "full_frame_mask", "X_inverted_mask": "inverted_mask",
                      "X_swapped_image_mask": "swapped_image_mask", "X_mask_equals_image": "mask_is_image",
                      "X_nan_pixels": "non_finite_pixels", "X_flat_image": "flat_image",
                      "X_one_pixel_mask": "tiny_mask", "X_wrong_size_mask": "size_mismatch",
                      "X_empty_mask": "empty_mask", "X_mask_label_absent": "label_missing"}
    for patient, flag in expected_flags.items():
        assert flag in flagged[patient].split(";"), (patient, flagged[patient])


@pytest.fixture(scope="module")
def extracted(corpus):
    out = corpus.root / "extract"
    result = invoke("extract", corpus.manifest, "--out", out, "--store", corpus.root / "feature-store", "--jobs", "1",
                    "--no-progress", expect=0)
    return result, out


def test_extract_names_every_broken_row_and_extracts_every_good_one(corpus, extracted):
    _, out = extracted
    features = pd.read_parquet(out / "radiomic_features.parquet")
    assert _good_patients(corpus) <= set(features["patient_id"])
    failures = pd.read_csv(out / "failures.csv", keep_default_na=False)
    text = failures.to_csv(index=False)
    rows = corpus.row_numbers()
    for case in _broken(corpus):
        if case.seen_without_images or not case.patient:
            _assert_named(text, case, rows[case.name])  # manifest rows: "manifest row N", patient, column
        else:
            assert case.patient in set(failures["patient_id"]), case.name
    # A row either has features or a failure, never neither.
    for case in _broken(corpus, qa_only=True):
        assert case.patient in set(features["patient_id"]) | set(failures["patient_id"])


@pytest.fixture(scope="module")
def study_run(corpus, extracted):
    result = invoke("run", corpus.study, "--no-progress", expect=0)
    run_dir = next((corpus.root / "output" / "runs").iterdir())
    return result, run_dir


@pytest.mark.slow
def test_run_names_every_unused_row_on_the_terminal_and_in_the_report(corpus, study_run):
    result, run_dir = study_run
    unused = pd.read_csv(run_dir / "unused_rows.csv", keep_default_na=False)
    rows = corpus.row_numbers()
    for case in _broken(corpus):
        named = unused[unused["row"].astype(str).isin([str(row) for row in rows[case.name]])]
        assert len(named), f"{case.name} not in unused_rows.csv"
        assert named["patient_id"].iloc[0] == case.patient and named["reason"].iloc[0], case.name
        if case.column and not case.qa_only:
            assert case.column in named["reason"].iloc[0] or named["stage"].iloc[0].startswith("features"), case.name
    other = unused[unused["patient_id"] == "X_other_modality"]
    assert other["stage"].tolist() == ["modality"] and "ULTRASOUND" in other["reason"].iloc[0]
    n_rows = len(corpus.good) + sum(len(case.rows) for case in corpus.row_cases)
    assert f"{len(unused)} of {n_rows} manifest rows not used" in result.output
    assert "row 13, patient X_missing_image" in result.output  # the first ones, by row, on the terminal
    report = (run_dir / "report.html").read_text()
    assert "Every manifest row this study did not use" in report and "X_conflicting_labels" in report
    assert f"{len(unused)} manifest row(s) were not used" in report


@pytest.mark.slow
def test_run_uses_every_good_row_and_marks_the_run_complete(corpus, study_run):
    _, run_dir = study_run
    oof = pd.read_csv(run_dir / "oof_predictions.csv")
    used = _good_patients(corpus) - {"X_other_modality"}  # another modality: counted as unused above
    assert used <= set(oof["patient_id"].astype(str))
    assert (run_dir / "COMPLETE").is_file()
    assert '"status": "complete"' in (run_dir / "status.json").read_text()


@pytest.mark.slow
def test_predict_gives_every_good_patient_a_probability_and_every_broken_one_a_reason(corpus, study_run, tmp_path):
    _, run_dir = study_run
    result = invoke("predict", run_dir / "model", corpus.manifest, "--out", tmp_path / "predictions", "--no-gradcam",
                    expect=0)
    predictions = pd.read_csv(tmp_path / "predictions" / "predictions.csv", keep_default_na=False)
    by_patient = predictions.set_index("patient_id")
    # A patient any of whose images is broken gets a reason, not a probability from the rest (the
    # bundle's rule): the repeated row makes X_duplicate_row such a patient.
    for patient in _good_patients(corpus) - {"X_other_modality", "X_duplicate_row"}:
        assert by_patient.loc[patient, "reason"] == "" and 0 <= float(by_patient.loc[patient, "probability"]) <= 1
    assert "duplicate of row" in by_patient.loc["X_duplicate_row", "reason"]
    for case in _broken(corpus):
        if case.patient and case.column == "label":
            # predict ignores labels entirely: a row whose only fault is its label is predicted
            assert by_patient.loc[case.patient, "reason"] == "", case.name
            assert 0 <= float(by_patient.loc[case.patient, "probability"]) <= 1, case.name
        elif case.patient:
            assert by_patient.loc[case.patient, "reason"], case.name
            assert case.patient in result.output
    assert "X_other_modality" in result.output  # only a modality the model does not use


# --- broken whole files -------------------------------------------------------------------------------------


def _words_for(case, command, corpus, tmp_path, bundle):
    out = tmp_path / f"{case.name}-{command}"
    if case.kind == "study":
        return ["run", case.path, "--no-progress"]
    if case.kind == "params":
        return ["extract", corpus.manifest, "--out", out, "--params", case.path, "--no-progress"]
    if case.kind == "scheduler":
        return ["extract", corpus.manifest, "--out", out, "--no-progress", *case.extra]
    if command == "check":
        return ["manifest", "check", case.path]
    if command == "qa":
        return ["qa", case.path, "--out", out]
    if command == "extract":
        return ["extract", case.path, "--out", out, "--no-progress"]
    if command == "run":
        study = tmp_path / f"{case.name}.yaml"
        study.write_text(yaml.safe_dump({"cohort": {"manifest": str(case.path)}, "feature_sources": ["radiomic"],
                                         "output": str(out)}))
        return ["run", study, "--no-progress"]
    return ["predict", bundle, case.path, "--out", out, "--no-gradcam"]


@pytest.mark.slow
def test_every_broken_whole_file_is_refused_with_one_clear_message(corpus, study_run, tmp_path):
    _, run_dir = study_run
    tried = []
    for case in corpus.whole_files:
        for command in case.commands:
            words = _words_for(case, command, corpus, tmp_path, run_dir / "model")
            result = invoke(*words)
            assert result.exit_code == EXIT_KNOWN_PROBLEM, (case.name, command, result.output)
            assert case.fragment in result.output, (case.name, command, result.output)
            assert "error: " in result.output
            tried.append((case.name, command))
    assert len(tried) >= 40


def test_a_folder_that_is_not_a_bundle_is_refused(corpus, tmp_path):
    (tmp_path / "not-a-bundle").mkdir()
    result = invoke("predict", tmp_path / "not-a-bundle", corpus.manifest, "--out", tmp_path / "p",
                    expect=EXIT_KNOWN_PROBLEM)
    assert "bundle.json" in result.output and "missing" in result.output
    assert not (tmp_path / "p").exists()


def test_the_good_rows_alone_are_half_benign_half_malignant(corpus):
    # The corpus's own promise: enough patients of each class for 2 x 2 folds.
    assert sorted(corpus.good["label"].value_counts().tolist()) == [N_GOOD_PATIENTS // 2] * 2


# --- free modality names, duplicates allowed, a failed run ---------------------------------------------------


@pytest.fixture(scope="module")
def dce_study(corpus, tmp_path_factory):
    """The good rows as modality "dce" (any case), plus one image filed again under a second patient."""
    folder = tmp_path_factory.mktemp("dce")
    rows = corpus.good.assign(modality=["dce", "Dce", " DCE "] * (len(corpus.good) // 3))
    twin = rows.iloc[[0]].assign(patient_id="TWIN")
    pd.concat([rows, twin]).to_csv(folder / "manifest.csv", index=False)
    study = cheapest_study("manifest.csv", cohort={"modalities": ["DCE"]}, qa={"allow_duplicates": True},
                           store=str(corpus.root / "feature-store"))
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    result = invoke("run", folder / "study.yaml", "--no-progress", expect=0)
    return folder, result, next((folder / "output" / "runs").iterdir())


@pytest.mark.slow
def test_a_free_modality_name_works_end_to_end(dce_study, tmp_path):
    import json

    folder, _, run_dir = dce_study
    bundle = json.loads((run_dir / "model" / "bundle.json").read_text())
    assert bundle["modalities"] == ["DCE"]
    assert "DCE" in (run_dir / "report.html").read_text()
    result = invoke("predict", run_dir / "model", folder / "manifest.csv", "--out", tmp_path / "p", "--no-gradcam",
                    expect=0)
    predictions = pd.read_csv(tmp_path / "p" / "predictions.csv", keep_default_na=False)
    assert (predictions["reason"] == "").all() and len(predictions) == N_GOOD_PATIENTS + 1, result.output


@pytest.mark.slow
def test_allowed_duplicates_are_listed_pair_by_pair_in_the_report(dce_study):
    _, result, run_dir = dce_study
    pairs = pd.read_csv(run_dir / "tables" / "qa_duplicates_across_patients.csv")
    assert {frozenset(pair) for pair in zip(pairs["roi_a"], pairs["roi_b"])} >= {frozenset({"G00/DCE/good00",
                                                                                             "TWIN/DCE/good00"})}
    assert "TWIN/DCE/good00" in (run_dir / "report.html").read_text()


def _must_not_run(*args, **kwargs):
    raise AssertionError("the work started although the output folder cannot be written")


@pytest.mark.slow
def test_a_read_only_output_folder_stops_every_command_before_any_work(corpus, study_run, tmp_path, monkeypatch):
    from folders import read_only_folder

    _, run_dir = study_run
    for target in ("dlradiomics.cohort.qa.run_qa", "dlradiomics.features.radiomic.extract_radiomic_features",
                   "dlradiomics.study.run.load_cohort", "dlradiomics.study.prediction.predict_manifest"):
        monkeypatch.setattr(target, _must_not_run)
    with read_only_folder(tmp_path) as folder:
        if folder is None:
            pytest.skip("cannot make a read-only folder here")
        study = tmp_path / "study.yaml"
        study.write_text(yaml.safe_dump(cheapest_study(str(corpus.manifest), output=str(folder / "output"))))
        for words in (["qa", corpus.manifest, "--out", folder / "qa"],
                      ["extract", corpus.manifest, "--out", folder / "extract", "--no-progress"],
                      ["run", study, "--no-progress"],
                      ["predict", run_dir / "model", corpus.manifest, "--out", folder / "predictions"]):
            result = invoke(*words, expect=EXIT_KNOWN_PROBLEM)
            assert "cannot write in the" in result.output and str(folder) in result.output, result.output


def test_a_server_that_is_not_a_dask_scheduler_is_refused_within_seconds(corpus, tmp_path):
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    try:
        started = time.perf_counter()
        result = invoke("extract", corpus.manifest, "--out", tmp_path / "out", "--scheduler", address, "--no-progress",
                        expect=EXIT_KNOWN_PROBLEM)
        assert time.perf_counter() - started < 20  # a Dask client would wait on such a server for minutes
        assert "does not answer as a Dask scheduler" in result.output and len(result.output.splitlines()) <= 3
    finally:
        listener.close()


def test_a_real_dask_scheduler_passes_the_check():
    from distributed import LocalCluster

    from dlradiomics.study.preflight import PreflightError, check_dask_scheduler

    with LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None) as cluster:
        check_dask_scheduler(cluster.scheduler_address)
        worker = next(iter(cluster.scheduler_info["workers"]))
        with pytest.raises(PreflightError, match="that is a Dask Worker, not the scheduler"):
            check_dask_scheduler(worker)

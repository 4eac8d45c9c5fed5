"""One error boundary for every command: known problems are one message (exit 2), the unexpected a crash log (exit 3)."""

from __future__ import annotations

import errno

import pandas as pd
import pytest
from corpus import textured_roi
from PIL import Image
from typer.testing import CliRunner

import dlradiomics.cohort
import dlradiomics.io.atomic
from dlradiomics.cli import app
from dlradiomics.cli.boundary import EXIT_INTERRUPTED, EXIT_KNOWN_PROBLEM, EXIT_UNEXPECTED

runner = CliRunner()


@pytest.fixture()
def manifest(tmp_path):
    """Eight good rows (four per class: 2 x 2 folds fit)."""
    rows = []
    for index in range(8):
        image, mask = textured_roi(index)
        Image.fromarray(image).save(tmp_path / f"i{index}.png")
        Image.fromarray(mask * 255).save(tmp_path / f"m{index}.png")
        rows.append({"patient_id": f"P{index}", "modality": "US", "image": f"i{index}.png", "mask": f"m{index}.png",
                     "label": index % 2})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path / "manifest.csv"


def _boom(*args, **kwargs):
    raise RuntimeError("boom: an internal error\nwith a second line")


def test_an_unexpected_error_is_one_line_and_a_crash_log_in_the_output_folder(manifest, tmp_path, monkeypatch):
    monkeypatch.setattr("dlradiomics.cohort.qa.run_qa", _boom)
    out = tmp_path / "qa-out"
    result = runner.invoke(app, ["qa", str(manifest), "--out", str(out)])
    assert result.exit_code == EXIT_UNEXPECTED
    assert "Traceback" not in result.output and "second line" not in result.output
    assert "error: unexpected RuntimeError in `dlradiomics qa`: boom: an internal error" in result.output
    logs = sorted(out.glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in result.output and "--debug" in result.output
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom" in text and "_boom" in text


def test_debug_lets_the_traceback_through(manifest, tmp_path, monkeypatch):
    monkeypatch.setattr("dlradiomics.cohort.qa.run_qa", _boom)
    result = runner.invoke(app, ["--debug", "qa", str(manifest), "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, RuntimeError) and "boom" in str(result.exception)
    assert not list((tmp_path / "out").glob("crash-*.log"))


def test_without_an_output_folder_the_crash_log_goes_to_the_user_cache(manifest, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(dlradiomics.cohort, "read_manifest", _boom)
    result = runner.invoke(app, ["manifest", "check", str(manifest)])
    assert result.exit_code == EXIT_UNEXPECTED
    logs = list((tmp_path / "cache" / "dlradiomics" / "crash-logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in result.output


def test_a_known_problem_is_one_message_with_what_to_do(tmp_path):
    (tmp_path / "m.csv").write_text("patient_id,modality\n")
    result = runner.invoke(app, ["qa", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_KNOWN_PROBLEM
    assert "Traceback" not in result.output
    assert "m.csv" in result.output and "names its columns but has no rows" in result.output
    assert "what to do:" in result.output
    assert not (tmp_path / "out").exists()  # inputs are checked before anything is created


def test_a_full_disk_while_writing_outputs_is_a_known_problem_and_keeps_the_old_outputs(manifest, tmp_path,
                                                                                      monkeypatch):
    out = tmp_path / "qa-out"
    assert runner.invoke(app, ["qa", str(manifest), "--out", str(out)]).exit_code == 0
    before = (out / "qa.csv").read_bytes()
    real_replace = dlradiomics.io.atomic.os.replace

    def disk_full_on_tables(source, target):
        if str(target).endswith(".csv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(dlradiomics.io.atomic.os, "replace", disk_full_on_tables)
    result = runner.invoke(app, ["qa", str(manifest), "--out", str(out), "--tiny-mask-pixels", "5"])
    assert result.exit_code == EXIT_KNOWN_PROBLEM
    assert f"cannot write {out / 'qa.csv'}: No space left on device" in result.output
    assert "free some disk space" in result.output
    assert (out / "qa.csv").read_bytes() == before
    assert not [path for path in out.iterdir() if path.name.endswith(".partial")]


def test_ctrl_c_exits_130_and_says_outputs_are_intact(manifest, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("dlradiomics.cohort.qa.run_qa", interrupt)
    result = runner.invoke(app, ["qa", str(manifest), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_INTERRUPTED
    assert "interrupted" in result.output and "intact" in result.output


def test_a_run_that_fails_is_marked_failed_with_its_error_in_run_log(manifest, tmp_path, monkeypatch):
    import json

    import yaml

    study = {"cohort": {"manifest": str(manifest)}, "feature_sources": ["radiomic"], "classifiers": ["logistic"],
             "fusion": ["single"], "cv": {"outer_folds": 2, "inner_folds": 2}, "report": {"canary": False},
             "output": str(tmp_path / "output")}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    monkeypatch.setattr("dlradiomics.study.run.run_grid_and_canary_cached", _boom)
    result = runner.invoke(app, ["run", str(tmp_path / "study.yaml"), "--no-progress"])
    assert result.exit_code == EXIT_UNEXPECTED and "Traceback" not in result.output
    run_dir = next((tmp_path / "output" / "runs").iterdir())
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "boom" in status["error"]
    assert not (run_dir / "COMPLETE").exists()
    log = (run_dir / "run.log").read_text()
    assert "run failed: RuntimeError: boom" in log and "Traceback" in log
    assert "stage failed: experiment grid" in log and "stage finished: experiment grid" not in log
    assert (run_dir / "input_hashes.csv").is_file()  # what was written before the failure stays
    assert list((tmp_path / "output").glob("crash-*.log"))  # the crash log sits in the study's output folder


def test_a_study_that_ends_without_a_model_exits_2_with_the_reason(manifest, tmp_path, monkeypatch):
    import yaml

    from dlradiomics.evaluation import GridResult
    from dlradiomics.study.stages import GridStage

    def every_configuration_skipped(*args, **kwargs):
        results = pd.DataFrame([{"source": "radiomic", "modalities": "US", "fusion": "single", "classifier": "logistic",
                                 "status": "skipped", "note": "could not run: no feature left after selection"}])
        return GridStage(GridResult(results=results, oof=pd.DataFrame(), fold_table=pd.DataFrame()))

    monkeypatch.setattr("dlradiomics.study.run.run_grid_and_canary_cached", every_configuration_skipped)
    study = {"cohort": {"manifest": str(manifest)}, "feature_sources": ["radiomic"], "classifiers": ["logistic"],
             "fusion": ["single"], "cv": {"outer_folds": 2, "inner_folds": 2}, "report": {"canary": False},
             "output": str(tmp_path / "output")}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    result = runner.invoke(app, ["run", str(tmp_path / "study.yaml"), "--no-progress"])
    assert result.exit_code == EXIT_KNOWN_PROBLEM, result.output
    assert "the study finished without a model: none of its 1 configuration(s) could be fitted" in result.output
    assert "no feature left after selection" in result.output and "report:" in result.output


def test_an_error_class_can_declare_itself_a_known_problem():
    from dlradiomics.cli.boundary import known_problem_hint

    class NotEnoughPatients(ValueError):
        known_problem = True
        hint = "add patients"

    assert known_problem_hint(NotEnoughPatients("3 patients")) == "add patients"
    assert known_problem_hint(ValueError("plain")) is None
    assert known_problem_hint(OSError(errno.ENOSPC, "No space left on device")) is not None

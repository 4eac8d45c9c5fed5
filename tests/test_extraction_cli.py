"""`dlradiomics extract`: outputs, the failure report, --strict, --params, and resuming a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import yaml
from synthetic_rois import synthetic_cohort_table, write_manifest_csv
from test_extraction import _broken_manifest
from typer.testing import CliRunner

from dlradiomics.cli import app
from dlradiomics.store import FeatureStore

runner = CliRunner()


def _extract_args(*args: str) -> list[str]:
    """Command-line words for `dlradiomics extract ARGS`.

    Typer runs an app with a single registered command as that command itself (no sub-command
    word); while the other commands are still stubs, `extract` can be the only one.
    """
    is_group = app.registered_callback or app.registered_groups or len(app.registered_commands) > 1
    return (["extract"] if is_group else []) + list(args)


def _invoke(*args: str):
    return runner.invoke(app, _extract_args(*args))


def test_extract_writes_tables_and_reports_every_failure(tmp_path):
    manifest = _broken_manifest(tmp_path / "cohort")
    out = tmp_path / "out"

    result = _invoke(*[str(manifest), "--out", str(out), "--jobs", "1", "--no-progress"])

    assert result.exit_code == 0, result.output
    assert "2 case(s) extracted" in result.output
    assert f"6 case(s) failed; the failures table is {out / 'failures.csv'}" in result.output
    for patient_file in ["wrong_size_mask.png", "empty_mask.png", "corrupt.png", "flat.png", "no_such_image.png"]:
        assert patient_file in result.output
    features = pd.read_parquet(out / "radiomic_features.parquet")
    assert len(features) == 2
    pd.testing.assert_frame_equal(pd.read_csv(out / "radiomic_features.csv"), features, check_dtype=False)
    assert len(pd.read_csv(out / "failures.csv")) == 6
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["settings"]["setting"]["binWidth"] == 25
    assert provenance["n_features"] == len(provenance["feature_names"]) == len(features.columns) - 10
    assert any((out / "store" / "radiomic").rglob("*.parquet"))


def test_strict_exits_non_zero_only_when_cases_failed(tmp_path):
    broken = _invoke(
        *[str(_broken_manifest(tmp_path / "a")), "--out", str(tmp_path / "a-out"), "--jobs", "1",
              "--no-progress", "--strict"]
    )
    assert broken.exit_code == 1
    manifest = write_manifest_csv(synthetic_cohort_table(tmp_path / "b", n_rois=2), tmp_path / "b" / "manifest.csv")
    clean = _invoke(
        *[str(manifest), "--out", str(tmp_path / "b-out"), "--jobs", "1", "--no-progress", "--strict"]
    )
    assert clean.exit_code == 0, clean.output
    assert "0 case(s) failed" in clean.output


def test_params_file_and_separate_store_are_used(tmp_path):
    manifest = write_manifest_csv(synthetic_cohort_table(tmp_path, n_rois=2), tmp_path / "manifest.csv")
    params = tmp_path / "firstorder.yaml"
    params.write_text(yaml.safe_dump({"setting": {"binWidth": 8, "force2D": True}, "featureClass": {"firstorder": []}}))

    result = _invoke(
        *[str(manifest), "--out", str(tmp_path / "out"), "--params", str(params),
              "--store", str(tmp_path / "shared-store"), "--jobs", "1", "--no-progress"]
    )

    assert result.exit_code == 0, result.output
    features = pd.read_parquet(tmp_path / "out" / "radiomic_features.parquet")
    feature_columns = [c for c in features.columns if c.startswith("original_")]
    assert feature_columns and all(c.startswith("original_firstorder_") for c in feature_columns)
    assert any((tmp_path / "shared-store" / "radiomic").rglob("*.parquet"))
    assert not (tmp_path / "out" / "store").exists()


def test_unreadable_manifest_gives_a_clear_error(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("patient,picture\nP1,a.png\n")
    result = _invoke(*[str(manifest), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "manifest.csv" in result.output


def _stored_count(store) -> int:
    return len(FeatureStore(store).keys("radiomic"))


def test_killed_run_resumes_with_what_is_missing_and_gives_the_same_table(tmp_path):
    n_rois = 30
    manifest = write_manifest_csv(
        synthetic_cohort_table(tmp_path / "rois", n_rois=n_rois, size=160), tmp_path / "manifest.csv"
    )
    store = tmp_path / "store"
    command = [sys.executable, "-c", "from dlradiomics.cli import app; app()",
               *_extract_args(str(manifest), "--out", str(tmp_path / "killed"), "--store", str(store), "--jobs", "1", "--no-progress")]
    # Its own session, so the kill reaches this run and nothing else.
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _stored_count(store) < 3 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    stored_before_resume = _stored_count(store)
    assert 3 <= stored_before_resume < n_rois, "the run was not interrupted midway"

    resumed = _invoke(*[str(manifest), "--out", str(tmp_path / "resumed"), "--store", str(store),
                                  "--jobs", "1", "--no-progress"])
    fresh = _invoke(*[str(manifest), "--out", str(tmp_path / "fresh"), "--jobs", "1",
                                "--no-progress"])

    assert resumed.exit_code == 0 and fresh.exit_code == 0, resumed.output + fresh.output
    assert f"{n_rois - stored_before_resume} computed, {stored_before_resume} reused" in resumed.output
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "resumed" / "radiomic_features.parquet"),
        pd.read_parquet(tmp_path / "fresh" / "radiomic_features.parquet"),
    )


def test_a_fully_cached_extract_does_not_import_pyradiomics(tmp_path):
    # Every ROI is in the store: the run reads rows and writes tables, and the imports of PyRadiomics,
    # SimpleITK and scikit-learn (most of such a run's time) are left out. A fresh interpreter, as a user runs it.
    manifest = write_manifest_csv(synthetic_cohort_table(tmp_path / "c", n_rois=2), tmp_path / "c" / "manifest.csv")
    args = [str(manifest), "--out", str(tmp_path / "out"), "--jobs", "1", "--no-progress"]
    assert _invoke(*args).exit_code == 0
    script = (
        "import sys\nfrom dlradiomics.cli import app\n"
        f"try:\n    app({_extract_args(*args)!r})\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print('imported:', sorted(m for m in ('radiomics', 'SimpleITK', 'sklearn') if m in sys.modules))\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ | {
        "PYTHONPATH": os.pathsep.join(sys.path)})
    assert finished.returncode == 0, finished.stderr
    assert "(0 computed, 2 reused" in finished.stdout
    assert "imported: []" in finished.stdout

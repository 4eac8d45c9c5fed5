"""A kill at any moment of a command leaves every earlier output intact and readable (real SIGKILLs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from corpus import build_corpus, cheapest_study

KILL_FRACTIONS = (0.5, 0.85, 0.97)
STARTUP_SECONDS = 4.0  # a fresh interpreter importing the package, roughly


def _command(*words) -> list[str]:
    return [sys.executable, "-m", "dlradiomics.cli", *map(str, words)]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _run_to_end(words) -> float:
    started = time.perf_counter()
    subprocess.run(_command(*words), env=_environment(), check=True, capture_output=True)
    return time.perf_counter() - started


def _kill_after(words, seconds: float) -> bool:
    """Start a command and SIGKILL it after ``seconds``; whether it was killed (not finished first)."""
    process = subprocess.Popen(_command(*words), env=_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def _readable_outputs(out: Path) -> dict[str, object]:
    return {
        "parquet": pd.read_parquet(out / "radiomic_features.parquet"),
        "csv": pd.read_csv(out / "radiomic_features.csv"),
        "failures": pd.read_csv(out / "failures.csv"),
        "provenance": json.loads((out / "provenance.json").read_text()),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("kill"))


@pytest.mark.slow
def test_killing_extract_at_any_moment_keeps_the_previous_tables(corpus, tmp_path):
    out = tmp_path / "out"
    words = ["extract", corpus.manifest, "--out", out, "--jobs", "1", "--no-progress"]
    seconds = _run_to_end([*words, "--store", tmp_path / "store-first"])
    first = _readable_outputs(out)
    # Other settings and a cold store: each second run recomputes and would write different tables.
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"setting": {"binWidth": 10}, "featureClass": {"firstorder": None}}))
    for attempt, fraction in enumerate(KILL_FRACTIONS):
        _kill_after([*words, "--store", tmp_path / f"store-{attempt}", "--params", params], seconds * fraction)
        now = _readable_outputs(out)  # every file parses: never half written
        for name in ("parquet", "csv", "failures"):  # each file is the first run's or the new one, whole
            assert len(now[name]) == len(first[name])
        assert set(now["provenance"]) == set(first["provenance"])
    assert not [path for path in out.iterdir() if path.name.endswith(".csv") and path.name.startswith(".")]


@pytest.mark.slow
def test_killing_a_run_leaves_the_earlier_run_complete_and_the_killed_one_marked_running(corpus, tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(cheapest_study(str(corpus.manifest), output=str(tmp_path / "output"),
                                                   store=str(tmp_path / "store"))))
    from typer.testing import CliRunner

    from dlradiomics.cli import app

    started = time.perf_counter()
    assert CliRunner().invoke(app, ["run", str(study), "--no-progress"]).exit_code == 0  # in-process: no start-up
    seconds = time.perf_counter() - started + STARTUP_SECONDS
    first = next((tmp_path / "output" / "runs").iterdir())
    before = {path.relative_to(first): path.read_bytes() for path in first.rglob("*") if path.is_file()}
    was_killed = _kill_after(["run", study, "--no-progress"], seconds * 0.6)
    after = {path.relative_to(first): path.read_bytes() for path in first.rglob("*") if path.is_file()}
    assert after == before and json.loads((first / "status.json").read_text())["status"] == "complete"
    killed = [run for run in (tmp_path / "output" / "runs").iterdir() if run != first]
    if killed and was_killed:  # the kill may land before the run folder exists, or after the run ended
        status = json.loads((killed[0] / "status.json").read_text())
        assert status["status"] in ("running", "complete")
        assert (status["status"] == "complete") == (killed[0] / "COMPLETE").exists()

"""The command's entry point: the app's exit status, and the objects frozen before the interpreter exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SOURCE = str(Path(__file__).resolve().parents[1] / "src")


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SOURCE + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_the_entry_point_keeps_the_apps_exit_status_and_freezes_the_objects_last():
    code = ("import gc, sys\n"
            "from dlradiomics.cli.entry import run\n"
            "sys.argv = ['dlradiomics'] + sys.argv[1:]\n"
            "try:\n"
            "    run()\n"
            "except SystemExit as done:\n"
            "    print('status', done.code, 'frozen', gc.get_freeze_count() > 0)\n")
    version = _python(code.replace("sys.argv[1:]", "['--version']"))
    assert version.stdout.splitlines()[-1] == "status 0 frozen True"
    unknown = _python(code.replace("sys.argv[1:]", "['no-such-command']"))
    assert unknown.stdout.splitlines()[-1] == "status 2 frozen True"


def test_python_dash_m_runs_the_command_line():
    result = subprocess.run([sys.executable, "-m", "dlradiomics.cli", "--version"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": SOURCE}, timeout=120)
    assert result.returncode == 0 and result.stdout.strip()

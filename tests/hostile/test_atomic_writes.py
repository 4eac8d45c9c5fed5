"""Outputs are replaced whole or not at all: a failed write, a kill or a full disk leaves the old file."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
from folders import read_only_folder, small_disk
from PIL import Image

from dlradiomics.io.atomic import (
    OutputFolderError,
    atomic_path,
    check_writable_folder,
    write_csv_atomic,
    write_json_atomic,
    write_png_atomic,
    write_text_atomic,
)


def _leftovers(folder):
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".partial"))


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    write_csv_atomic(pd.DataFrame({"a": [1, 2]}), target)
    write_csv_atomic(pd.DataFrame({"a": [3, 4, 5]}), target)
    assert pd.read_csv(target)["a"].tolist() == [3, 4, 5]
    assert _leftovers(target.parent) == []


def test_a_failure_in_the_middle_keeps_the_previous_file(tmp_path):
    target = tmp_path / "results.csv"
    write_text_atomic(target, "good,old\n1,2\n")

    def half_then_disk_full(temporary):
        temporary.write_text("half,of,a")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as caught:
        with atomic_path(target) as temporary:
            half_then_disk_full(temporary)
    assert caught.value.errno == errno.ENOSPC
    assert str(target) in str(caught.value)  # the message names the file that could not be written
    assert target.read_text() == "good,old\n1,2\n"
    assert _leftovers(tmp_path) == []


def test_an_interrupt_in_the_middle_keeps_the_previous_file(tmp_path):
    target = tmp_path / "provenance.json"
    write_json_atomic(target, {"version": 1})
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as temporary:
            temporary.write_text('{"version": 2, "trunc')
            raise KeyboardInterrupt
    assert target.read_text() == '{\n  "version": 1\n}\n'
    assert _leftovers(tmp_path) == []


def test_a_killed_writer_leaves_the_previous_file_and_only_a_marked_partial(tmp_path):
    target = tmp_path / "features.csv"
    write_text_atomic(target, "complete,table\n")
    script = textwrap.dedent(f"""
        import sys, time
        from dlradiomics.io.atomic import atomic_path
        with atomic_path({str(target)!r}) as temporary:
            with open(temporary, "w") as stream:
                stream.write("half,a,table\\n" * 1000)
                stream.flush()
                print("writing", flush=True)
                time.sleep(60)
    """)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=environment, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert target.read_text() == "complete,table\n"
    partials = _leftovers(tmp_path)
    assert len(partials) == 1 and partials[0].startswith(".features.csv.")  # hidden, and matches no *.csv


def test_a_full_disk_never_leaves_a_half_written_table(tmp_path):
    with small_disk(tmp_path) as disk:
        if disk is None:
            pytest.skip("cannot mount a small tmpfs here (needs root); the injected ENOSPC tests cover the logic")
        target = disk / "radiomic_features.csv"
        small = pd.DataFrame({"feature": np.arange(10.0)})
        write_csv_atomic(small, target)
        huge = pd.DataFrame(np.random.default_rng(0).normal(size=(20000, 8)))
        with pytest.raises(OSError) as caught:
            write_csv_atomic(huge, target)
        assert caught.value.errno == errno.ENOSPC
        pd.testing.assert_frame_equal(pd.read_csv(target), small)
        assert _leftovers(disk) == []


def test_png_writer_writes_png_whatever_the_suffix(tmp_path):
    path = write_png_atomic(Image.fromarray(np.zeros((4, 4), np.uint8)), tmp_path / "overlay.png")
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("where", ["/proc/dlradiomics-test-out", "/proc/self/dlradiomics"])
def test_a_folder_under_proc_is_refused_at_once(where):
    with pytest.raises(OutputFolderError, match=f"cannot write in the output folder {where}"):
        check_writable_folder(where)


def test_a_file_given_as_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file, not a folder"):
        check_writable_folder(tmp_path / "file")


def test_a_read_only_folder_is_refused_before_any_work(tmp_path):
    with read_only_folder(tmp_path) as folder:
        if folder is None:
            pytest.skip("cannot make a read-only folder here")
        started = time.perf_counter()
        with pytest.raises(OutputFolderError, match="Read-only file system|Permission denied"):
            check_writable_folder(folder / "out")
        assert time.perf_counter() - started < 1

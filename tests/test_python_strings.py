"""Text inside grid cells held as Python strings, and handed back in pandas' default storage."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from dlradiomics.evaluation.python_strings import (
    DEFAULT_STRINGS,
    PYTHON_STRINGS,
    python_string_storage,
    with_string_storage,
)


def _storage_of_new_text() -> str:
    return pd.Series(["a"]).dtype.storage


def test_inside_the_block_new_text_is_python_strings_and_the_option_comes_back():
    outside = pd.get_option("mode.string_storage")
    default_storage = _storage_of_new_text()
    with python_string_storage():
        assert _storage_of_new_text() == "python"
        assert pd.DataFrame(np.zeros((1, 2)), columns=["a", "b"]).columns.dtype == PYTHON_STRINGS
    assert pd.get_option("mode.string_storage") == outside
    assert _storage_of_new_text() == default_storage == DEFAULT_STRINGS.storage


def test_blocks_on_several_threads_restore_the_option_only_when_the_last_one_leaves():
    outside = pd.get_option("mode.string_storage")
    first_inside, second_inside, first_left = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with python_string_storage():
            first_inside.set()
            second_inside.wait(5)
        first_left.set()

    def second():
        first_inside.wait(5)
        with python_string_storage():
            second_inside.set()
            first_left.wait(5)
            seen["after the first left"] = _storage_of_new_text()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"after the first left": "python"}
    assert pd.get_option("mode.string_storage") == outside


def test_a_table_changes_storage_not_values():
    table = pd.DataFrame({"name": ["x", "y", None], "value": [1.0, 2.0, np.nan]},
                         index=pd.Index(["p1", "p2", "p3"], name="patient_id"))
    python = with_string_storage(table, PYTHON_STRINGS)
    assert python.index.dtype == python.columns.dtype == python["name"].dtype == PYTHON_STRINGS
    assert python.index.name == "patient_id"
    back = with_string_storage(python, DEFAULT_STRINGS)
    pd.testing.assert_frame_equal(back, table, check_exact=True)
    assert back["name"].dtype == table["name"].dtype and back.index.dtype == table.index.dtype
    assert with_string_storage(table, DEFAULT_STRINGS) is table  # nothing to change: the table itself
    assert table.index.dtype == DEFAULT_STRINGS  # the original is untouched

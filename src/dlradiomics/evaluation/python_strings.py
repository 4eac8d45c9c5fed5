"""Text inside grid cells held as Python strings: pandas' Arrow strings were an eighth of a cell's time.

pandas 3 stores text (a table's column names, the ``patient_id`` index) as Arrow strings by
default. A grid cell builds, selects and compares thousands of small tables whose column names
number up to 1,280 (an EfficientNet-Lite0 block): every new column index converts its names to
Arrow, every column selection takes from Arrow, and scikit-learn reads the names back as Python
objects to check them. In the demo's grid that was 12% of the time (py-spy, one process). pandas'
other storage of the same ``str`` dtype holds Python strings: the same values, compared and
hashed alike, with none of those conversions. Inside cells, the grid's tables and every text pandas
makes are stored that way (14% less CPU on the demo's grid, the same probabilities to the last
bit); what a cell returns is given the default storage back, so nothing outside cells sees the difference.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

PYTHON_STRINGS = pd.StringDtype(storage="python", na_value=np.nan)
# the default ``str`` dtype, resolved here, outside any `python_string_storage` block
DEFAULT_STRINGS = pd.StringDtype(na_value=np.nan)

_lock = threading.Lock()
_depth = 0
_storage_outside = None


@contextmanager
def python_string_storage() -> Iterator[None]:
    """Inside the block, the text pandas makes is stored as Python strings.

    pandas' option is one per process, so concurrent blocks on several threads (a Dask worker
    runs cells on threads) share it: the first to enter sets it, the last to leave restores it.
    """
    global _depth, _storage_outside
    with _lock:
        if _depth == 0:
            _storage_outside = pd.get_option("mode.string_storage")
            pd.set_option("mode.string_storage", "python")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                pd.set_option("mode.string_storage", _storage_outside)


def _restored(labels: pd.Index, dtype: pd.StringDtype) -> pd.Index:
    if isinstance(labels, pd.MultiIndex) or not isinstance(labels.dtype, pd.StringDtype):
        return labels
    return labels.astype(dtype) if labels.dtype != dtype else labels


def with_string_storage(frame: pd.DataFrame, dtype: pd.StringDtype) -> pd.DataFrame:
    """``frame`` with its text columns, index and column names stored as ``dtype`` (values unchanged).

    Args:
        frame: a table.
        dtype: `PYTHON_STRINGS` or `DEFAULT_STRINGS`.

    Returns:
        A shallow copy when anything changes, else ``frame`` itself.
    """
    text = [column for column, column_dtype in frame.dtypes.items()
            if isinstance(column_dtype, pd.StringDtype) and column_dtype != dtype]
    index, columns = _restored(frame.index, dtype), _restored(frame.columns, dtype)
    if not text and index is frame.index and columns is frame.columns:
        return frame
    result = frame.astype(dict.fromkeys(text, dtype)) if text else frame.copy(deep=False)
    result.index, result.columns = index, columns
    return result


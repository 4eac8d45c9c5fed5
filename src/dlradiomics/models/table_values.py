"""Reading a pandas table's values without scikit-learn's column-by-column validation.

scikit-learn validates a DataFrame one column at a time (dtype, name and uniqueness checks of
about 10 µs a column). On a 1,280-column deep block of a few dozen patients that is several times
the cost of imputing, scaling or projecting it, and a grid does it hundreds of thousands of times.
A table of NumPy float columns named by strings holds nothing those checks could find that its
values and names do not show at once, so the grid's estimators read such a table's values and
record its names as scikit-learn would (``feature_names_in_``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def plain_float_column_names(X: Any) -> np.ndarray | None:
    """The column names as scikit-learn records them, for a table of NumPy float columns named by strings.

    Args:
        X: anything an estimator may be given.

    Returns:
        The names (an object array, as ``feature_names_in_``), or None when X is not a DataFrame,
        has no columns, holds a column that is not a NumPy float, or a name that is not a string.
    """
    if not isinstance(X, pd.DataFrame) or X.shape[1] == 0:
        return None
    if not all(isinstance(dtype, np.dtype) and dtype.kind == "f" for dtype in X.dtypes.unique()):
        return None
    names = np.asarray(X.columns, dtype=object)
    if isinstance(X.columns.dtype, pd.StringDtype) and not X.columns.hasnans:
        return names  # a string column index holds only strings: no need to look at each
    return names if all(isinstance(name, str) for name in names) else None

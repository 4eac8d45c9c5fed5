"""Fits shared between the models of a grid that would otherwise repeat them, keyed by content.

A grid fits the same step on the same training rows many times over: seven classifiers behind one
selection (selection does not depend on the classifier), ensemble and stacking behind the same
block models, the operating threshold's inner folds behind a late fusion's own inner folds.
While a `FitCache` is active (``with sharing_fits(FitCache()):``), the pipelines that
`dlradiomics.models.make_pipeline` builds are `SharedFitPipeline` objects: each step's fit is
looked up by a key of

- the unfitted step (class and every parameter, seeds included),
- its training rows: their values, their row labels (the patients) and the column names,
- the training labels, for every step that reads them (selectors, classifiers),
- the kind of fit.

A step whose key is found is not fitted again: the pipeline takes the fitted step (and, for
a step inside the pipeline, its output on the training rows) from the cache. A key holds exactly
the rows the step is fitted on, so a fit on one training set is never handed to a fit on another,
and a test patient can never reach a fit through the cache. Only the steps known to ignore
labels (`LABEL_FREE_STEPS`: imputation, the constant-column filter, scaling, PCA) are keyed
without the labels, so a permuted-label rerun (the leakage canary) reuses them, and nothing else.

Shared fitted steps are read, never refitted: a pipeline refitted later clones its steps first.
Outside `sharing_fits` nothing changes: `make_pipeline` builds plain scikit-learn pipelines, which
is what a model bundle holds.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from dlradiomics.models.reduction import BoundedPCA
from dlradiomics.models.table_values import plain_float_column_names

# Exact classes whose fit never reads y; a subclass may, so it is keyed with the labels.
LABEL_FREE_STEPS: tuple[type, ...] = (SimpleImputer, VarianceThreshold, StandardScaler, PCA, BoundedPCA)
DEFAULT_MAX_BYTES = 768 * 2**20
DEFAULT_MAX_ENTRIES = 20_000

_ACTIVE: ContextVar[FitCache | None] = ContextVar("dlradiomics_fit_cache", default=None)


def active_fit_cache() -> FitCache | None:
    """The `FitCache` of the innermost `sharing_fits` block of this thread, or None."""
    return _ACTIVE.get()


@contextmanager
def sharing_fits(cache: FitCache) -> Iterator[FitCache]:
    """Share identical fits through ``cache`` for the pipelines built and fitted inside the block.

    Args:
        cache: the cache to use (one per grid cell, or one per worker process).

    Yields:
        The cache.
    """
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)


def fingerprint(data: Any) -> str:
    """A content hash of training data: values, row labels and column names (or None).

    Args:
        data: a DataFrame, Series, NumPy array or None.

    Returns:
        A hex digest; equal digests mean equal values, row labels and columns.
    """
    digest = hashlib.blake2b(digest_size=20)
    if data is None:
        digest.update(b"none")
    elif isinstance(data, (pd.DataFrame, pd.Series)):
        digest.update(type(data).__name__.encode())
        _update_with_array(digest, data.to_numpy())
        digest.update(pd.util.hash_pandas_object(data.index, index=False).to_numpy().tobytes())
        digest.update(str(data.index.name).encode())
        names = list(data.columns) if isinstance(data, pd.DataFrame) else [data.name]
        digest.update(json.dumps([str(name) for name in names]).encode())
    elif isinstance(data, np.ndarray):
        _update_with_array(digest, data)
    else:
        digest.update(joblib.hash(data).encode())
    return digest.hexdigest()


def _update_with_array(digest, values: np.ndarray) -> None:
    digest.update(f"{values.dtype.str}{values.shape}".encode())
    if values.dtype.hasobject:
        digest.update(joblib.hash(values).encode())
    else:
        digest.update(np.ascontiguousarray(values).view(np.uint8).data)


def reads_labels(step: BaseEstimator) -> bool:
    """Whether a step's fit may read y (everything but the exact `LABEL_FREE_STEPS`)."""
    return type(step) not in LABEL_FREE_STEPS


@dataclass
class _Entry:
    fitted: BaseEstimator
    output: Any
    nbytes: int
    fit_seconds: float


@dataclass
class FitCacheStats:
    """What a cache saved.

    Args:
        hits: fits taken from the cache.
        misses: fits computed.
        seconds_saved: fit time (CPU seconds of the original fits) the hits did not spend again.
        evictions: entries dropped to stay within the memory budget.
    """

    hits: int = 0
    misses: int = 0
    seconds_saved: float = 0.0
    evictions: int = 0


class FitCache:
    """Fitted steps (and their outputs on the training rows) by a key of step, rows and labels.

    Entries are dropped least recently used first once the outputs held exceed ``max_bytes``
    or the entries exceed ``max_entries``; a dropped entry is simply fitted again when asked for.

    Args:
        max_bytes: memory budget of the outputs held.
        max_entries: most entries held.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.stats = FitCacheStats()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        # id of an output this cache holds -> its key, so the next step need not hash it again
        self._output_keys: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, step: BaseEstimator, X: Any, y: Any) -> str:
        """The key of fitting the unfitted ``step`` on ``(X, y)``.

        Args:
            step: an unfitted estimator.
            X: the training rows.
            y: the training labels (left out of the key for a label-free step).

        Returns:
            The key (a hex digest).
        """
        labels = fingerprint(y) if reads_labels(step) else "label-free"
        parts = f"{joblib.hash(step)}|{self._data_key(X)}|{labels}"
        return hashlib.blake2b(parts.encode(), digest_size=20).hexdigest()

    def _data_key(self, X: Any) -> str:
        key = self._output_keys.get(id(X))
        if key is not None and self._entries[key].output is X:
            return f"output:{key}"
        return fingerprint(X)

    def fit(self, step: BaseEstimator, X: Any, y: Any) -> BaseEstimator:
        """The step fitted on ``(X, y)``: taken from the cache, or fitted on a clone and kept.

        Args:
            step: the step (cloned before fitting; never modified).
            X: training rows.
            y: training labels.

        Returns:
            The fitted step (shared: read it, never refit it).
        """
        unfitted = clone(step)
        key = self.key(unfitted, X, y)
        entry = self._lookup(key)
        if entry is not None:
            return entry.fitted
        started = time.process_time()
        fitted = unfitted.fit(X, y)
        self._store(key, _Entry(fitted, None, 0, time.process_time() - started))
        return fitted

    def fit_transform(self, step: BaseEstimator, X: Any, y: Any) -> tuple[Any, BaseEstimator]:
        """The step's ``fit_transform`` output on ``(X, y)`` and the fitted step, from the cache or computed.

        Args:
            step: the step (cloned before fitting; never modified).
            X: training rows.
            y: training labels.

        Returns:
            ``(output, fitted step)``; both shared: read them, never modify them.
        """
        unfitted = clone(step)
        key = self.key(unfitted, X, y)
        entry = self._lookup(key, need_output=True)
        if entry is None:
            started = time.process_time()
            output = _fit_transform(unfitted, X, y)
            entry = _Entry(unfitted, output, _nbytes(output), time.process_time() - started)
            self._store(key, entry)
        return entry.output, entry.fitted

    def _lookup(self, key: str, need_output: bool = False) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None or (need_output and entry.output is None):
            # An entry from a plain fit holds no output; fit_transform's output is not always
            # fit().transform()'s to the last bit (PCA), so it is computed afresh.
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        self.stats.seconds_saved += entry.fit_seconds
        return entry

    def _store(self, key: str, entry: _Entry) -> None:
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self._bytes += entry.nbytes
        if entry.output is not None:
            self._output_keys[id(entry.output)] = key
        while len(self._entries) > 1 and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
            self._drop(next(iter(self._entries)))
            self.stats.evictions += 1

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.nbytes
        if entry.output is not None and self._output_keys.get(id(entry.output)) == key:
            del self._output_keys[id(entry.output)]

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
        self._output_keys.clear()
        self._bytes = 0


def _fit_transform(step: BaseEstimator, X: Any, y: Any) -> Any:
    """``step.fit_transform(X, y)``; a label-free step on a plain float table is fitted on its values.

    For the exact `LABEL_FREE_STEPS` on a table of NumPy float columns named by strings (see
    `dlradiomics.models.table_values`), the step is fitted on the table's values and then given
    the names scikit-learn records (``feature_names_in_``), and the output is wrapped as its pandas
    output would be: the fitted step and the output are those ``step.fit_transform(X, y)`` makes.
    """
    names = plain_float_column_names(X) if type(step) in LABEL_FREE_STEPS else None
    if names is None:
        return step.fit_transform(X, y)
    # a copy: set_output changes the estimator's configuration dictionary in place
    output_config = dict(getattr(step, "_sklearn_output_config", None) or {}) or None
    step.set_output(transform="default")
    try:
        values = step.fit_transform(X.to_numpy(), y)
    finally:
        if output_config is None:
            del step._sklearn_output_config
        else:
            step._sklearn_output_config = output_config
    step.feature_names_in_ = names
    if (output_config or {}).get("transform") != "pandas":
        return values
    output = pd.DataFrame(values, index=X.index, copy=False)
    output.columns = step.get_feature_names_out()
    return output


def _transform(step: BaseEstimator, X: Any) -> Any:
    """``step.transform(X)``; a label-free step fitted on these very columns transforms the table's values.

    The names are compared here, once, with those the step was fitted on (what scikit-learn's
    validation would check, column by column); the output is the step's pandas output with the
    table's index, as ``step.transform(X)`` gives it.
    """
    fitted_names = getattr(step, "feature_names_in_", None) if type(step) in LABEL_FREE_STEPS else None
    names = plain_float_column_names(X) if fitted_names is not None else None
    if names is None or not np.array_equal(names, fitted_names):
        return step.transform(X)
    with warnings.catch_warnings():
        # "X does not have valid feature names": they were checked above, against the fitted ones
        warnings.simplefilter("ignore", UserWarning)
        output = step.transform(X.to_numpy())
    if isinstance(output, pd.DataFrame):
        output.index = X.index
    return output


def _nbytes(output: Any) -> int:
    if isinstance(output, pd.DataFrame):
        # From the dtypes, not `memory_usage`, which builds a Series per column (28 ms on a
        # 1,280-column deep block: more than fitting the step it measures).
        return len(output) * int(sum(dtype.itemsize for dtype in output.dtypes)) + int(output.index.nbytes)
    return int(getattr(output, "nbytes", 0))


class SharedFitPipeline(Pipeline):
    """A scikit-learn `Pipeline` whose step fits go through the active `FitCache`.

    Fitting gives the same fitted steps as `Pipeline.fit` (each step but the last is fitted with
    ``fit_transform`` on the previous step's output, the last with ``fit``); with no active cache,
    with fit parameters (metadata routing) or with ``passthrough`` steps it is `Pipeline.fit`.
    `make_pipeline` builds it only inside `sharing_fits`, so a model bundle never holds one.
    """

    def fit(self, X, y=None, **params):
        """Fit every step, taking identical fits from the active cache.

        Args:
            X: training rows.
            y: training labels.
            **params: fit parameters; when given, the pipeline is fitted as `Pipeline.fit` does.

        Returns:
            self
        """
        cache = active_fit_cache()
        if cache is None or params or not self._shareable():
            return super().fit(X, y, **params)
        self._fit_shared(cache, X, y, transform_last=False)
        return self

    def fit_transform(self, X, y=None, **params):
        """Fit every step (taking identical fits from the active cache) and return the last step's output.

        Args:
            X: training rows.
            y: training labels.
            **params: fit parameters; when given, as `Pipeline.fit_transform`.

        Returns:
            The transformed training rows.
        """
        cache = active_fit_cache()
        if cache is None or params or not self._shareable():
            return super().fit_transform(X, y, **params)
        return self._fit_shared(cache, X, y, transform_last=True)

    def predict_proba(self, X, **params):
        """Class probabilities, as `Pipeline.predict_proba`; label-free steps transform a plain float table's values.

        Args:
            X: rows to predict.
            **params: predict parameters; when given, as `Pipeline.predict_proba`.

        Returns:
            The final step's probabilities.
        """
        if params or not self._shareable():
            return super().predict_proba(X, **params)
        return self.steps[-1][1].predict_proba(self._transform_through(X, with_final=False))

    def transform(self, X, **params):
        """Every step's transform in turn, as `Pipeline.transform`; label-free steps transform a plain float table's values.

        Args:
            X: rows to transform.
            **params: transform parameters; when given, as `Pipeline.transform`.

        Returns:
            The last step's output.
        """
        if params or not self._shareable():
            return super().transform(X, **params)
        return self._transform_through(X, with_final=True)

    def _transform_through(self, X, *, with_final: bool):
        check_is_fitted(self)
        for _, _, step in self._iter(with_final=with_final):
            X = _transform(step, X)
        return X

    def _shareable(self) -> bool:
        return self.transform_input is None and all(
            isinstance(step, BaseEstimator) for _, step in self.steps
        )

    def _fit_shared(self, cache: FitCache, X, y, *, transform_last: bool):
        self._validate_steps()
        fitted_steps = []
        output = X
        last = len(self.steps) - 1
        for position, (name, step) in enumerate(self.steps):
            if position < last or transform_last:
                output, fitted = cache.fit_transform(step, output, y)
            else:
                fitted = cache.fit(step, output, y)
            fitted_steps.append((name, fitted))
        self.steps = fitted_steps
        return output


def pipeline_class() -> type[Pipeline]:
    """The pipeline class to build now: `SharedFitPipeline` inside `sharing_fits`, else `Pipeline`."""
    return SharedFitPipeline if active_fit_cache() is not None else Pipeline

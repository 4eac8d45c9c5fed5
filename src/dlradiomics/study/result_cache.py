"""Study results cached in the feature store under a key of everything they depend on.

A re-run whose inputs (feature tables, folds, settings) are unchanged reads the grid's tables back
instead of recomputing them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from hashlib import sha256
from typing import Any

import pandas as pd

from dlradiomics.store import FeatureStore, content_key

logger = logging.getLogger(__name__)


def table_fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a table (values, index and column names), for cache keys."""
    digest = sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update(json.dumps([str(column) for column in frame.columns]).encode())
    return digest.hexdigest()


def cached_frames(store: FeatureStore, namespace: str, key_parts: dict[str, Any], names: list[str],
                  compute: Callable[[], dict[str, pd.DataFrame]]) -> tuple[dict[str, pd.DataFrame], bool]:
    """Read several tables from the store, or compute and store them.

    Args:
        store: the feature store.
        namespace: store namespace (e.g. "grid").
        key_parts: everything the result depends on (hashed into the key).
        names: table names `compute` returns.
        compute: callable returning `{name: DataFrame}`.

    Returns:
        `{name: DataFrame}` and whether they came from the store, as `(frames, cached)`.
    """
    keys = {name: content_key({**key_parts, "table": name}) for name in names}
    stored = {name: store.get(namespace, key) for name, key in keys.items()}
    if all(frame is not None for frame in stored.values()):
        logger.info("%s: every table read from the store (inputs unchanged)", namespace)
        return stored, True
    computed = compute()
    for name, key in keys.items():
        store.put(namespace, key, computed[name])
    return computed, False

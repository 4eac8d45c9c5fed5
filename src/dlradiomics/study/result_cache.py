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


def stored_frames(store: FeatureStore, namespace: str, key_parts: dict[str, Any],
                  names: list[str]) -> dict[str, pd.DataFrame] | None:
    """Several tables stored under a key of everything they depend on, or None unless every one is there.

    Args:
        store: the feature store.
        namespace: store namespace (e.g. "grid").
        key_parts: everything the tables depend on (hashed into the key).
        names: the tables' names.

    Returns:
        ``{name: DataFrame}``, or None.
    """
    stored = {name: store.get(namespace, _key(key_parts, name)) for name in names}
    if any(frame is None for frame in stored.values()):
        return None
    logger.info("%s: every table read from the store (inputs unchanged)", namespace)
    return stored  # type: ignore[return-value]


def store_frames(store: FeatureStore, namespace: str, key_parts: dict[str, Any], frames: dict[str, pd.DataFrame]) -> None:
    """Store tables under a key of everything they depend on (read back by `stored_frames`).

    Args:
        store: the feature store.
        namespace: store namespace.
        key_parts: everything the tables depend on.
        frames: ``{name: DataFrame}``.
    """
    for name, frame in frames.items():
        store.put(namespace, _key(key_parts, name), frame)


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
    stored = stored_frames(store, namespace, key_parts, names)
    if stored is not None:
        return stored, True
    computed = compute()
    store_frames(store, namespace, key_parts, {name: computed[name] for name in names})
    return computed, False


def _key(key_parts: dict[str, Any], name: str) -> str:
    return content_key({**key_parts, "table": name})

"""Study results cached in the feature store under a key of everything they depend on.

A re-run whose inputs (feature tables, folds, settings) are unchanged reads the grid's tables back
instead of recomputing them, and the final model's bundle files instead of fitting it again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import Any

import pandas as pd

from dlradiomics.bundle.metadata import METADATA_FILE as BUNDLE_METADATA_FILE
from dlradiomics.io.atomic import write_bytes_atomic
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


@cache
def package_source_fingerprint() -> str:
    """SHA-256 of the package's Python source files (their paths and bytes): a version of the code itself."""
    root = Path(__file__).resolve().parent.parent
    digest = sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def bundle_files_frame(folder: Path) -> pd.DataFrame:
    """The files of a bundle folder as a table (``name``, ``content``), to keep in the store."""
    files = sorted(path for path in folder.iterdir() if path.is_file())
    return pd.DataFrame({"name": [path.name for path in files], "content": [path.read_bytes() for path in files]})


def restore_bundle_files(files: pd.DataFrame, folder: Path) -> bool:
    """Write stored bundle files into ``folder`` (``bundle.json`` last), if they are whole.

    Returns:
        False, writing nothing, when ``bundle.json`` is missing or does not list exactly the other
        files with their SHA-256 (a damaged entry: the caller fits again).
    """
    contents = {str(name): bytes(content) for name, content in zip(files["name"], files["content"])}
    metadata = contents.get(BUNDLE_METADATA_FILE)
    try:
        recorded = json.loads(metadata)["files"] if metadata is not None else None
    except (ValueError, KeyError, TypeError):
        recorded = None
    others = {name: data for name, data in contents.items() if name != BUNDLE_METADATA_FILE}
    if not isinstance(recorded, dict) or set(recorded) != set(others) or any(
            sha256(data).hexdigest() != recorded[name] for name, data in others.items()):
        logger.warning("final model: the stored bundle of these inputs is damaged; fitting again")
        return False
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in others.items():
        write_bytes_atomic(folder / name, data)
    write_bytes_atomic(folder / BUNDLE_METADATA_FILE, metadata)
    return True

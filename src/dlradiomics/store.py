"""Content-addressed cache of feature tables.

Every computed result (the radiomic features of one ROI, the embedding of one ROI under one
backbone) is stored under a key derived from the *content* of its inputs: the SHA-256 of the image
file, of the mask file, and of the settings that produced it. A second run with the same inputs
finds every result and computes nothing; a run killed midway loses only the ROIs in flight, because
each result is written atomically (temporary file, then ``os.replace``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pandas as pd

# Prefix of the temporary files that writes go through before their atomic rename.
_PARTIAL_PREFIX = ".tmp-"


def content_key(parts: dict[str, Any]) -> str:
    """SHA-256 of a canonical JSON rendering of ``parts`` (keys sorted, no whitespace)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class FeatureStore:
    """A folder of Parquet files, one per key, grouped in namespaces (``radiomic``, ``deep/resnet50``).

    Args:
        root: folder of the store; created on first write.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, namespace: str, key: str) -> Path:
        # Two-character fan-out keeps folders small for cohorts of many thousand ROIs.
        return self.root / namespace / key[:2] / f"{key}.parquet"

    def __contains__(self, item: tuple[str, str]) -> bool:
        namespace, key = item
        return self.path(namespace, key).exists()

    def get(self, namespace: str, key: str) -> pd.DataFrame | None:
        """The stored frame, or ``None`` when this key has not been computed."""
        path = self.path(namespace, key)
        if not path.exists():
            return None
        return pd.read_parquet(path)

    def put(self, namespace: str, key: str, frame: pd.DataFrame) -> Path:
        """Write ``frame`` atomically: readers see the old state or the whole new file, never a part."""
        return self._write_atomically(namespace, key, lambda tmp: frame.to_parquet(tmp, index=False))

    def get_row(self, namespace: str, key: str) -> dict[str, Any] | None:
        """The first row stored under ``key`` as a plain dict, or ``None`` when not computed.

        Args:
            namespace: the store namespace (``radiomic``).
            key: the content key.

        Returns:
            Column name -> value; a few times faster than :meth:`get` for one-row entries,
            which matters when a cohort of thousands is read back from the cache.
        """
        import pyarrow.parquet as pq

        path = self.path(namespace, key)
        if not path.exists():
            return None
        rows = pq.ParquetFile(path).read(use_threads=False).to_pylist()
        return rows[0] if rows else None

    def put_row(self, namespace: str, key: str, row: dict[str, Any]) -> Path:
        """Write one row (column name -> scalar) atomically; :meth:`get` reads it back as a frame.

        Args:
            namespace: the store namespace (``radiomic``).
            key: the content key.
            row: the values to store; column order is kept.

        Returns:
            The path written.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Straight to Arrow: converting a one-row DataFrame costs more than the write itself.
        table = pa.Table.from_pylist([row])
        return self._write_atomically(namespace, key, lambda tmp: pq.write_table(table, tmp))

    def _write_atomically(self, namespace: str, key: str, write: Callable[[str], object]) -> Path:
        path = self.path(namespace, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_PARTIAL_PREFIX, suffix=".parquet")
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def keys(self, namespace: str) -> list[str]:
        """Every key stored in ``namespace``."""
        folder = self.root / namespace
        if not folder.exists():
            return []
        # A writer killed mid-write leaves its temporary file behind; it is not a result.
        return sorted(p.stem for p in folder.glob("??/*.parquet") if not p.name.startswith(_PARTIAL_PREFIX))

"""Content-addressed cache of feature tables.

Every computed result (the radiomic features of one ROI, the embedding of one ROI under one
backbone, the tables of an experiment grid) is stored under a key derived from the *content* of its
inputs: the SHA-256 of the image file, of the mask file, and of the settings that produced it. A
second run with the same inputs finds every result and computes nothing.

Two kinds of entries:

- **Rows** (:meth:`FeatureStore.put_row`, :meth:`FeatureStore.get_rows`): one record per key, for
  results computed by the thousand. A writer appends each row to its own log file (Arrow IPC
  stream, one record batch per row, flushed at once), which it holds an exclusive ``flock`` on; a
  process killed midway leaves at most a partial last record, which readers ignore. When a run
  ends, :meth:`FeatureStore.consolidate` merges every log no live writer holds, and every table,
  into one Parquet table per schema (written to a temporary file, then renamed), so a cached
  re-run opens one file, not one per ROI. Readers may run during any of this: a file that vanishes
  under them was merged into a table that already exists, and they list the folder again.
- **Frames** (:meth:`FeatureStore.put`, :meth:`FeatureStore.get`): a whole table per key, one
  Parquet file each, written atomically (temporary file, then ``os.replace``).

A table or log that cannot be read (truncated, corrupt) is set aside as ``*.corrupt`` and logged,
never fatal: its rows count as not computed, so they are computed again.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

# Prefix of the temporary files that writes go through before their atomic rename.
_PARTIAL_PREFIX = ".tmp-"
KEY_COLUMN = "__key__"
_TABLE_PREFIX, _TABLE_SUFFIX = "table-", ".parquet"
_LOG_PREFIX, _LOG_SUFFIX = "log-", ".arrows"
_CORRUPT_SUFFIX = ".corrupt"
_CONSOLIDATE_LOCK = ".consolidate.lock"
# A reader that finds a file gone (merged meanwhile) lists the folder again, at most this often.
_READ_ATTEMPTS = 5


def content_key(parts: dict[str, Any]) -> str:
    """SHA-256 of a canonical JSON rendering of ``parts`` (keys sorted, no whitespace)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _RowLog:
    """This process's append-only log of rows of one schema in one namespace."""

    def __init__(self, folder: Path, schema: pa.Schema):
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{_LOG_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}{_LOG_SUFFIX}"
        self.path = folder / name
        self.schema = schema
        self._stream = open(self.path, "wb")  # noqa: SIM115 - held open for the writer's lifetime
        # Held until close: consolidation leaves a log alone while its writer lives.
        fcntl.flock(self._stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._writer = pa.ipc.new_stream(self._stream, schema)
        self._stream.flush()

    def append(self, table: pa.Table) -> None:
        self._writer.write_table(table)
        # Flushed per row: a run killed afterwards keeps the row.
        self._stream.flush()

    def close(self) -> None:
        try:
            self._writer.close()
            self._stream.flush()
        finally:
            self._stream.close()


@dataclass
class _FileRows:
    signature: tuple[int, int]
    rows: dict[str, dict[str, Any]]


class FeatureStore:
    """Rows in consolidated tables, and frames in one Parquet file per key, grouped in namespaces.

    Args:
        root: folder of the store; created on first write.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._logs: dict[tuple[str, pa.Schema], _RowLog] = {}
        self._read_cache: dict[Path, _FileRows] = {}
        self._reported: set[Path] = set()

    # ------------------------------------------------------------------ frames

    def path(self, namespace: str, key: str) -> Path:
        """The file of a frame entry."""
        # Two-character fan-out keeps folders small for cohorts of many thousand entries.
        return self.root / namespace / key[:2] / f"{key}.parquet"

    def __contains__(self, item: tuple[str, str]) -> bool:
        namespace, key = item
        return self.path(namespace, key).exists() or key in self.get_rows(namespace, [key])

    def get(self, namespace: str, key: str) -> pd.DataFrame | None:
        """The stored frame (a row entry as a one-row frame), or ``None`` when not computed.

        A frame file that cannot be read is set aside and logged, and counts as not computed.
        """
        path = self.path(namespace, key)
        if path.exists():
            try:
                return pd.read_parquet(path)
            except FileNotFoundError:
                return None
            except (OSError, pa.ArrowException) as error:
                self._set_aside(path, error)
                return None
        row = self.get_row(namespace, key)
        return None if row is None else pd.DataFrame([row])

    def put(self, namespace: str, key: str, frame: pd.DataFrame) -> Path:
        """Write ``frame`` atomically: readers see the old state or the whole new file, never a part."""
        path = self.path(namespace, key)
        return write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))

    # ------------------------------------------------------------------ rows

    def put_row(self, namespace: str, key: str, row: dict[str, Any]) -> None:
        """Append one row (column name -> scalar) under ``key``; readable at once by every process.

        Args:
            namespace: the store namespace (``radiomic``).
            key: the content key.
            row: the values to store; column order is kept.
        """
        table = pa.Table.from_pylist([{KEY_COLUMN: key, **row}])
        log = self._logs.get((namespace, table.schema))
        if log is None:
            log = self._logs[(namespace, table.schema)] = _RowLog(self.root / namespace, table.schema)
        log.append(table)

    def get_row(self, namespace: str, key: str) -> dict[str, Any] | None:
        """The row stored under ``key`` as a plain dict, or ``None`` when not computed."""
        return self.get_rows(namespace, [key]).get(key)

    def get_rows(self, namespace: str, keys: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Every row of ``namespace`` stored under one of ``keys`` (all rows for ``None``).

        Args:
            namespace: the store namespace.
            keys: the content keys wanted.

        Returns:
            key -> row (column name -> value, the key itself left out), for the keys found.
        """
        wanted = None if keys is None else set(keys)
        found: dict[str, dict[str, Any]] = {}
        for rows in self._file_rows(namespace):
            for key in (rows.keys() if wanted is None else wanted.intersection(rows)):
                found.setdefault(key, rows[key])
        return found

    def keys(self, namespace: str) -> list[str]:
        """Every key stored in ``namespace``, rows and frames."""
        folder = self.root / namespace
        if not folder.exists():
            return []
        # A writer killed mid-write leaves its temporary file behind; it is not a result.
        frames = {p.stem for p in folder.glob("??/*.parquet") if not p.name.startswith(_PARTIAL_PREFIX)}
        return sorted(frames | set(self.get_rows(namespace)))

    def close(self) -> None:
        """Close this store's row logs (releasing them for consolidation)."""
        logs, self._logs = list(self._logs.values()), {}
        for log in logs:
            log.close()

    def consolidate(self, namespace: str) -> int:
        """Merge the namespace's tables and finished logs into one Parquet table per schema.

        Logs still held by a live writer are left alone (they are merged by a later call). If
        another process is consolidating, this returns at once.

        Returns:
            The number of files merged away (0 when there was nothing to do).
        """
        folder = self.root / namespace
        if not folder.is_dir():
            return 0
        with _try_lock(folder / _CONSOLIDATE_LOCK) as locked:
            if not locked:
                return 0
            sources = sorted(folder.glob(f"{_TABLE_PREFIX}*{_TABLE_SUFFIX}"))
            sources += [path for path in sorted(folder.glob(f"{_LOG_PREFIX}*{_LOG_SUFFIX}")) if not _is_live(path)]
            if len(sources) < 2 and not any(path.name.startswith(_LOG_PREFIX) for path in sources):
                return 0
            groups: dict[pa.Schema, list[pa.Table]] = {}
            merged, seen = [], set()
            for path in sources:
                table = self._read_file(path)
                if table is None:
                    continue
                merged.append(path)
                fresh = []
                for key in table.column(KEY_COLUMN).to_pylist():
                    fresh.append(key not in seen)
                    seen.add(key)
                table = table.filter(pa.array(fresh, type=pa.bool_()))
                if table.num_rows:
                    groups.setdefault(table.schema, []).append(table)
            for schema, tables in groups.items():
                target = folder / f"{_TABLE_PREFIX}{uuid.uuid4().hex}{_TABLE_SUFFIX}"
                whole = pa.concat_tables(tables)
                write_atomically(target, lambda tmp, whole=whole: pq.write_table(whole, tmp, write_page_checksum=True))
            # Only now that every row is in a new table may the sources go.
            for path in merged:
                path.unlink(missing_ok=True)
                self._read_cache.pop(path, None)
            return len(merged)

    # ------------------------------------------------------------------ reading

    def _file_rows(self, namespace: str) -> list[dict[str, dict[str, Any]]]:
        folder = self.root / namespace
        for _ in range(_READ_ATTEMPTS):
            if not folder.is_dir():
                return []
            paths = sorted(folder.glob(f"{_TABLE_PREFIX}*{_TABLE_SUFFIX}"))
            paths += sorted(folder.glob(f"{_LOG_PREFIX}*{_LOG_SUFFIX}"))
            try:
                return [self._rows_of(path) for path in paths]
            except FileNotFoundError:
                continue  # merged into a new table meanwhile: list again
        raise RuntimeError(f"feature store {folder} keeps changing under the reader; try again")

    def _rows_of(self, path: Path) -> dict[str, dict[str, Any]]:
        status = path.stat()
        signature = (status.st_size, status.st_mtime_ns)
        cached = self._read_cache.get(path)
        if cached is not None and cached.signature == signature:
            return cached.rows
        table = self._read_file(path)
        rows: dict[str, dict[str, Any]] = {}
        if table is not None:
            for record in table.to_pylist():
                rows.setdefault(record.pop(KEY_COLUMN), record)
        self._read_cache[path] = _FileRows(signature, rows)
        return rows

    def _read_file(self, path: Path) -> pa.Table | None:
        """A table's or a log's rows; ``None`` (file set aside and logged) when it is unreadable."""
        if path.name.startswith(_TABLE_PREFIX):
            try:
                return pq.read_table(path, use_threads=False, page_checksum_verification=True)
            except FileNotFoundError:
                raise
            except (OSError, pa.ArrowException) as error:
                self._set_aside(path, error)
                return None
        return self._read_log(path)

    def _read_log(self, path: Path) -> pa.Table | None:
        data = path.read_bytes()
        batches, problem = [], None
        try:
            reader = pa.ipc.open_stream(pa.BufferReader(data))
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
            return pa.Table.from_batches(batches, schema=reader.schema)
        except (OSError, pa.ArrowException) as error:
            problem = error
        if _is_live(path):
            # Its writer is appending right now: the tail is a record in flight, not damage.
            return pa.Table.from_batches(batches) if batches else None
        if not batches:
            self._set_aside(path, problem)
            return None
        if path not in self._reported:
            self._reported.add(path)
            logger.warning("feature store: ignored a partial record at the end of %s (its writer was "
                           "interrupted); the %d complete row(s) before it are used", path, len(batches))
        return pa.Table.from_batches(batches)

    def _set_aside(self, path: Path, error: BaseException | None) -> None:
        if path in self._reported:
            return
        self._reported.add(path)
        aside = path.with_name(path.name + _CORRUPT_SUFFIX)
        try:
            os.replace(path, aside)
        except OSError:
            aside = path
        logger.warning("feature store: %s is unreadable (%s: %s); its entries will be computed again "
                       "(file kept as %s)", path, type(error).__name__, error, aside.name)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass


def write_atomically(path: Path, write: Callable[[str], object]) -> Path:
    """Call ``write(temporary path)`` beside ``path``, then rename it onto ``path``.

    Readers see the old file or the whole new one, never a part; a failed write leaves the old one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_PARTIAL_PREFIX, suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _is_live(path: Path) -> bool:
    """Whether a live writer holds ``path`` (its exclusive ``flock``)."""
    try:
        with open(path, "rb") as stream:
            try:
                fcntl.flock(stream.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return True
                raise
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


class _try_lock:
    """``with _try_lock(path) as locked:`` an exclusive, non-blocking ``flock`` on ``path``."""

    def __init__(self, path: Path):
        self.path = path
        self._stream = None

    def __enter__(self) -> bool:
        self._stream = open(self.path, "a+b")  # noqa: SIM115 - closed in __exit__
        try:
            fcntl.flock(self._stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def __exit__(self, *exc_info) -> None:
        self._stream.close()  # closing releases the lock

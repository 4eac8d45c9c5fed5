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
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

# The file hash cache (`dlradiomics.io.FileHashCache`) kept in a store's folder and shared by everything
# that keys results by the content of images and masks (radiomics, embeddings, QA, provenance).
FILE_HASHES = "file-hashes.json"
# Prefix of the temporary files that writes go through before their atomic rename.
_PARTIAL_PREFIX = ".tmp-"
KEY_COLUMN = "__key__"
_TABLE_PREFIX, _TABLE_SUFFIX = "table-", ".parquet"
_LOG_PREFIX, _LOG_SUFFIX = "log-", ".arrows"
_CORRUPT_SUFFIX = ".corrupt"
_CONSOLIDATE_LOCK = ".consolidate.lock"
# A reader that finds a file gone (merged meanwhile) lists the folder again, at most this often.
_READ_ATTEMPTS = 5
# A folder listing is remembered only when the folder is older than this (timestamp granularity).
_RECENT_NS = 100_000_000


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files are created private (0600); a finished entry gets the permissions any new file
# would get, so that a store folder shared by a group of users (or Dask workers) stays shared.
_FILE_MODE = 0o666 & ~_current_umask()


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
    """What one table or log holds: where each key's row is, and (once needed) its rows."""

    path: Path
    signature: tuple[int, int]
    positions: dict[str, int]
    table: pa.Table | None = None


class FeatureStore:
    """Rows in consolidated tables, and frames in one Parquet file per key, grouped in namespaces.

    Args:
        root: folder of the store; created on first write.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._logs: dict[tuple[str, pa.Schema], _RowLog] = {}
        self._read_cache: dict[Path, _FileRows] = {}
        self._listings: dict[Path, tuple[int, list[Path]]] = {}
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
        for file_rows in self._file_rows(namespace):
            hits = [key for key in (file_rows.positions if wanted is None else wanted.intersection(file_rows.positions))
                    if key not in found]
            if not hits:
                continue
            table = self._table_of(file_rows)
            if table is None:
                continue
            # Only the rows asked for are turned into Python values: a store holding other
            # settings' wide rows costs nothing to a reader that does not want them.
            records = table.take(pa.array([file_rows.positions[key] for key in hits])).to_pylist()
            for key, record in zip(hits, records):
                record.pop(KEY_COLUMN, None)
                found[key] = record
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
        """Merge the namespace's finished logs, and tables of the same schema, into one table each.

        Logs still held by a live writer are left alone (a later call merges them); a table whose
        schema no other file shares is left as it is. If another process is consolidating, this
        returns at once.

        Returns:
            The number of files merged away (0 when there was nothing to do).
        """
        folder = self.root / namespace
        if not folder.is_dir():
            return 0
        with _try_lock(folder / _CONSOLIDATE_LOCK) as locked:
            if not locked:
                return 0
            groups: dict[pa.Schema, list[tuple[Path, pa.Table | None]]] = {}
            for path in sorted(folder.glob(f"{_TABLE_PREFIX}*{_TABLE_SUFFIX}")):
                try:
                    schema = pq.read_schema(path)
                except (OSError, pa.ArrowException) as error:
                    self._set_aside(path, error)
                    continue
                groups.setdefault(schema.remove_metadata(), []).append((path, None))
            for path in sorted(folder.glob(f"{_LOG_PREFIX}*{_LOG_SUFFIX}")):
                if _is_live(path):
                    continue
                table = self._read_log(path)
                if table is None:
                    continue
                groups.setdefault(table.schema.remove_metadata(), []).append((path, table))
            merged = 0
            for schema, members in groups.items():
                if len(members) < 2 and all(table is None for _, table in members):
                    continue  # one table alone: already consolidated
                merged += self._merge(folder, members)
            return merged

    def _merge(self, folder: Path, members: list[tuple[Path, pa.Table | None]]) -> int:
        """Write the rows of ``members`` (first occurrence of each key) as one table, then drop them."""
        tables, sources, seen = [], [], set()
        for path, table in members:
            table = table if table is not None else self._read_table(path)
            if table is None:
                continue
            sources.append(path)
            fresh = []
            for key in table.column(KEY_COLUMN).to_pylist():
                fresh.append(key not in seen)
                seen.add(key)
            table = table.filter(pa.array(fresh, type=pa.bool_()))
            if table.num_rows:
                tables.append(table.replace_schema_metadata(None))
        if tables:
            whole = pa.concat_tables(tables)
            target = folder / f"{_TABLE_PREFIX}{uuid.uuid4().hex}{_TABLE_SUFFIX}"
            write_atomically(target, lambda tmp: pq.write_table(whole, tmp, write_page_checksum=True))
        # Only now that every row is in the new table may the sources go.
        for path in sources:
            path.unlink(missing_ok=True)
            self._read_cache.pop(path, None)
        return len(sources)

    # ------------------------------------------------------------------ reading

    def _row_files(self, folder: Path) -> list[Path]:
        """The tables and logs of a namespace folder, listed again only when the folder changed."""
        stamp = folder.stat().st_mtime_ns
        listed = self._listings.get(folder)
        if listed is None or listed[0] != stamp:
            paths = sorted(folder.glob(f"{_TABLE_PREFIX}*{_TABLE_SUFFIX}"))
            paths += sorted(folder.glob(f"{_LOG_PREFIX}*{_LOG_SUFFIX}"))
            listed = (stamp, paths)
            # A folder changed within the timestamp's granularity may change again unseen.
            if time.time_ns() - stamp > _RECENT_NS:
                self._listings[folder] = listed
        return listed[1]

    def _file_rows(self, namespace: str) -> list[_FileRows]:
        folder = self.root / namespace
        for _ in range(_READ_ATTEMPTS):
            try:
                indexed = [self._index_of(path) for path in self._row_files(folder)]
                return [file_rows for file_rows in indexed if file_rows is not None]
            except FileNotFoundError:
                if not folder.is_dir():
                    return []
                self._listings.pop(folder, None)  # merged into a new table meanwhile: list again
        raise RuntimeError(f"feature store {folder} keeps changing under the reader; try again")

    def _index_of(self, path: Path) -> _FileRows | None:
        """The keys of one file (a table's key column only; a log is read whole)."""
        status = path.stat()
        signature = (status.st_size, status.st_mtime_ns)
        cached = self._read_cache.get(path)
        if cached is not None and cached.signature == signature:
            return cached
        table = None
        if path.name.startswith(_TABLE_PREFIX):
            keys = self._read_table(path, columns=[KEY_COLUMN])
        else:
            keys = table = self._read_log(path)
        if keys is None:
            return None
        positions: dict[str, int] = {}
        for position, key in enumerate(keys.column(KEY_COLUMN).to_pylist()):
            positions.setdefault(key, position)
        self._read_cache[path] = _FileRows(path, signature, positions, table)
        return self._read_cache[path]

    def _table_of(self, file_rows: _FileRows) -> pa.Table | None:
        if file_rows.table is None:
            file_rows.table = self._read_table(file_rows.path)
            if file_rows.table is None:
                self._read_cache.pop(file_rows.path, None)
        return file_rows.table

    def _read_table(self, path: Path, columns: list[str] | None = None) -> pa.Table | None:
        try:
            return pq.read_table(path, columns=columns, use_threads=False, page_checksum_verification=True)
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException) as error:
            self._set_aside(path, error)
            return None

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
        os.chmod(tmp, _FILE_MODE)
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

"""QA records cached by content: a re-run opens no image whose files have not changed.

Reading and checking every image and mask is the costliest part of a re-run once features are in
the store (about 30 s for BUS-BRA's 1,875 ROIs). What a check finds about one row depends only on
the bytes of its image and mask, the row's mask label and slice, the check's own settings and code,
and the libraries that decode the pixels; :class:`QaCache` keeps each row's findings in a row store
(the feature store's ``qa`` namespace) under a key of exactly these, with the files' SHA-256 from a
:class:`~dlradiomics.io.FileHashCache` (so an unchanged file is not even read to be hashed). A
changed file changes its rows' keys, and only those rows are checked again.

The paths are part of the key as well: a finding's message names its file.

Duplicate detection compares rows with each other, so it is never cached: it runs on the cached
hashes every time (milliseconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import pandas as pd

from dlradiomics.cohort.qa.checks import READ_ERROR_FIELD, UNEXPECTED_FIELD, check_rows
from dlradiomics.io import FileHashCache, ImageReadError, load_roi

logger = logging.getLogger(__name__)

# Bump when a check changes what it records for the same files (every cached row is then checked again).
QA_VERSION = 1
QA_NAMESPACE = "qa"
# Packages whose code turns a file into the pixels QA measures and hashes.
_DECODING_PACKAGES = ("dlradiomics", "numpy", "scipy", "Pillow", "ImageHash", "scikit-image", "SimpleITK",
                      "pydicom", "highdicom")
# The row's identity: taken from the row every time, never from the cache.
_ROW_FIELDS = ("roi_id", "patient_id", "modality", "label", "image", "mask")


class RowStore(Protocol):
    """Where cached rows live: the methods of `dlradiomics.store.FeatureStore` that QA uses."""

    def get_rows(self, namespace: str, keys: Iterable[str] | None = None) -> dict[str, dict[str, Any]]: ...

    def put_row(self, namespace: str, key: str, row: dict[str, Any]) -> None: ...


class QaCache:
    """Per-row QA findings, computed once per content and settings, kept in a row store.

    Args:
        store: the row store (a `dlradiomics.store.FeatureStore`); ``None`` keeps findings in
            memory for this process only.
        hashes: the files' SHA-256, remembered across runs.
        tiny_mask_pixels: the QA setting of the same name (part of the key).
        n_jobs: worker processes for rows not cached.
        progress: show the count of images checked and the time left.

    Attributes:
        n_computed: rows checked by reading their files, in this process.
        n_reused: rows whose findings came from the store.
    """

    def __init__(self, store: RowStore | None, hashes: FileHashCache, *, tiny_mask_pixels: int = 32,
                 n_jobs: int = 1, progress: bool = False):
        self.store = store
        self.hashes = hashes
        self.tiny_mask_pixels = tiny_mask_pixels
        self.n_jobs = n_jobs
        self.progress = progress
        self.n_computed = 0
        self.n_reused = 0
        self._known: dict[str, dict[str, Any]] = {}
        self._keys: dict[tuple, str | None] = {}
        self._libraries = _library_versions()

    def key(self, row: dict[str, Any]) -> str | None:
        """The content key of one row's findings, or None when a file cannot be hashed (then never cached).

        Keys are remembered for this object's life (the manifest check and QA ask for the same rows).
        """
        identity = (row["image"], row["mask"], _optional_int(row.get("mask_label")), _optional_int(row.get("slice")))
        if identity not in self._keys:
            self._keys[identity] = self._content_key(row)
        return self._keys[identity]

    def _content_key(self, row: dict[str, Any]) -> str | None:
        try:
            image_hash, mask_hash = self.hashes.sha256(row["image"]), self.hashes.sha256(row["mask"])
        except OSError:
            return None
        parts = {"qa_version": QA_VERSION, "tiny_mask_pixels": self.tiny_mask_pixels, "libraries": self._libraries,
                 "image": os.path.abspath(row["image"]), "image_sha256": image_hash,
                 "mask": os.path.abspath(row["mask"]), "mask_sha256": mask_hash,
                 "mask_label": _optional_int(row.get("mask_label")), "slice": _optional_int(row.get("slice"))}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def records(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One QA record per row (as `check_rows` gives it), from the cache where the row's key is known."""
        keys = [self.key(row) for row in rows]
        wanted = {key for key in keys if key is not None and key not in self._known}
        if wanted and self.store is not None:
            for key, stored in self.store.get_rows(QA_NAMESPACE, wanted).items():
                self._known[key] = json.loads(stored["record"])
                self.n_reused += 1
        pending = [i for i, key in enumerate(keys) if key is None or key not in self._known]
        computed = (check_rows([rows[i] for i in pending], self.tiny_mask_pixels, self.n_jobs, progress=self.progress)
                    if pending else [])
        self.n_computed += len(pending)
        fresh: dict[int, dict[str, Any]] = {}
        for i, record in zip(pending, computed):
            fresh[i] = record
            key = keys[i]
            # A check that broke on something other than the files (a bug, memory) is not a finding about them.
            if key is not None and not record[UNEXPECTED_FIELD]:
                content = _content_of(record)
                self._known[key] = content
                if self.store is not None:
                    self.store.put_row(QA_NAMESPACE, key, {"record": json.dumps(content, default=_plain)})
        return [fresh[i] if i in fresh else _with_row(self._known[keys[i]], rows[i]) for i in range(len(rows))]

    def read_errors(self, rows: list[dict[str, Any]]) -> list[ImageReadError | None]:
        """What `load_roi` would raise for each row (None where it reads), answered from the QA findings.

        A row whose check broke on something else is read with `load_roi` itself, so that whatever
        it raises is raised as before.
        """
        errors: list[ImageReadError | None] = []
        for row, record in zip(rows, self.records(rows)):
            if record[UNEXPECTED_FIELD]:
                errors.append(_load_error(row))
            elif record[READ_ERROR_FIELD] is not None:
                errors.append(ImageReadError(*record[READ_ERROR_FIELD]))
            else:
                errors.append(None)
        return errors


def _load_error(row: dict[str, Any]) -> ImageReadError | None:
    try:
        load_roi(row["image"], row["mask"], mask_label=_optional_int(row.get("mask_label")),
                 slice_index=_optional_int(row.get("slice")))
    except ImageReadError as error:
        return error
    return None


def _content_of(record: dict[str, Any]) -> dict[str, Any]:
    content = {name: value for name, value in record.items() if name not in _ROW_FIELDS}
    content["flags"] = list(content["flags"])  # duplicate detection later adds to the record's own list
    return content


def _with_row(content: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    record = {name: row.get(name) for name in _ROW_FIELDS}
    record.update(content)
    record["flags"] = list(record["flags"])  # the caller's to extend, not the cache's
    return record


def _plain(value: Any) -> Any:
    """JSON for numpy scalars (their Python value: an exact round trip)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _optional_int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _library_versions() -> dict[str, str]:
    versions = {}
    for package in _DECODING_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions

"""Content hashes of files, used as provenance and as feature-store keys.

Hashing every image and mask of a cohort on every run costs more than reading the cached features
back, so :class:`FileHashCache` remembers each file's hash beside its size, modification time and
inode, and hashes a file again only when one of those changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# 1 MiB reads keep memory flat for large DICOM/NIfTI files.
_CHUNK_BYTES = 1 << 20
# A file modified this recently may be modified again within the same timestamp tick, unseen by a
# (size, mtime) check; its hash is used but not remembered (git's "racy clean" rule).
_RACY_WINDOW_NS = 2_000_000_000
_CACHE_FORMAT = 1


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes, or of a folder's files (a DICOM series).

    Args:
        path: the file to hash; a folder is hashed by :func:`folder_digest` over its files.

    Returns:
        The 64-character lowercase hex digest.
    """
    if os.path.isdir(path):
        return folder_digest(path, sha256_file)
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_digest(folder: str | os.PathLike[str], file_digest) -> str:
    """SHA-256 of a folder's content: its files' names and digests, in name order.

    Only the folder's own regular files count (a DICOM series folder is read without its
    subfolders); a file added, removed, renamed or changed changes the digest.

    Args:
        folder: the folder.
        file_digest: how one file's SHA-256 is obtained (directly, or from a cache).
    """
    digest = hashlib.sha256(b"dlradiomics-folder-v1\n")
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file():
            digest.update(f"{entry.name}\0{file_digest(entry.path)}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


class FileHashCache:
    """SHA-256 of files, remembered with their size, modification time and inode.

    Args:
        path: the JSON file the cache is kept in; ``None`` keeps it in memory only. A missing or
            unreadable cache file starts an empty cache (every file is hashed again, nothing fails).

    Several processes may share one cache file: each reads it, and :meth:`save` replaces it
    atomically, so the worst a race can do is forget some hashes, which are then recomputed.

    What it promises (the rule of git's index and of make): the hash it returns is that of the
    file's bytes unless the file was rewritten keeping its size, its inode and its modification
    time to the nanosecond *after* that time was at least two seconds old when the file was hashed.
    Ordinary writes, copies and restores change the modification time; a file rewritten within
    the same timestamp tick as it was hashed is covered by never remembering the hash of a file
    modified in the last two seconds. A tool that writes a file and then sets its modification
    time back to the old value defeats it (delete the cache file to hash everything again).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, list] = {}
        self._changed = False
        self.n_hashed = 0
        if self.path is not None and self.path.exists():
            self._entries = self._load(self.path)

    @staticmethod
    def _load(path: Path) -> dict[str, list]:
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            if content.get("format") != _CACHE_FORMAT or not isinstance(content.get("files"), dict):
                raise ValueError(f"unexpected format {content.get('format')!r}")
            return content["files"]
        except (OSError, ValueError, AttributeError) as error:
            logger.warning("file hash cache %s is unreadable (%s); every file will be hashed again", path, error)
            return {}

    def sha256(self, file: str | os.PathLike[str]) -> str:
        """The SHA-256 of ``file``, from the cache when the file has not changed since.

        A folder (a DICOM series) is hashed by :func:`folder_digest`, each of its files through
        this cache.

        Raises:
            OSError: the file cannot be read.
        """
        if os.path.isdir(file):
            return folder_digest(file, self.sha256)
        name = os.path.abspath(file)
        status = os.stat(name)
        signature = [status.st_size, status.st_mtime_ns, status.st_ino]
        entry = self._entries.get(name)
        if entry is not None and entry[:3] == signature:
            return entry[3]
        digest = sha256_file(name)
        self.n_hashed += 1
        if time.time_ns() - status.st_mtime_ns > _RACY_WINDOW_NS:
            self._entries[name] = [*signature, digest]
            self._changed = True
        return digest

    def save(self) -> None:
        """Write the cache file atomically (if anything changed); a failure to write is logged only."""
        if self.path is None or not self._changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as stream:
                    json.dump({"format": _CACHE_FORMAT, "files": self._entries}, stream)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._changed = False
        except OSError as error:
            logger.warning("could not write the file hash cache %s: %s", self.path, error)

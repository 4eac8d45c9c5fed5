"""Content hashes of files, used as provenance and as feature-store keys."""

from __future__ import annotations

import hashlib
import os

# 1 MiB reads keep memory flat for large DICOM/NIfTI files.
_CHUNK_BYTES = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes.

    Args:
        path: the file to hash.

    Returns:
        The 64-character lowercase hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()

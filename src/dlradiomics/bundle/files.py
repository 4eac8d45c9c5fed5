"""The files of a bundle folder: their hashes, and the check that nothing was swapped, added or lost."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from dlradiomics.bundle.errors import BundleError
from dlradiomics.bundle.metadata import METADATA_FILE


def sha256_bytes(data: bytes) -> str:
    """SHA-256 hex digest of some bytes."""
    return hashlib.sha256(data).hexdigest()


def read_checked_files(folder: Path, recorded: Mapping[str, str]) -> dict[str, bytes]:
    """Read every file a bundle lists and check it against its recorded SHA-256.

    The bytes that were hashed are the bytes returned, so a file cannot be swapped between the
    check and its use.

    Args:
        folder: the bundle folder.
        recorded: file name -> SHA-256, from `bundle.json`.

    Returns:
        File name -> bytes.

    Raises:
        BundleError: naming a file that is missing, not listed (extra) or whose contents changed.
    """
    present = sorted(entry.name for entry in folder.iterdir() if entry.name != METADATA_FILE)
    extra = [name for name in present if name not in recorded]
    if extra:
        raise BundleError(f"{folder / extra[0]}: refused: a file the bundle does not list in {METADATA_FILE} "
                          f"(extra files: {extra})")
    contents = {}
    for name, digest in recorded.items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: missing; {METADATA_FILE} lists it, so the bundle is incomplete")
        data = path.read_bytes()
        if sha256_bytes(data) != digest:
            raise BundleError(f"{path}: refused: its contents changed after the bundle was written "
                              f"(SHA-256 differs from the one recorded in {METADATA_FILE})")
        contents[name] = data
    return contents


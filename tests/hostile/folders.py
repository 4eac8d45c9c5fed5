"""Folders that refuse writes: a read-only one and a nearly full one, made real where the machine allows.

As root, permission bits do not stop a write, so a read-only folder is a read-only tmpfs mount;
elsewhere it is a folder without write permission. A full disk is a tiny tmpfs mount, which needs
root (or CAP_SYS_ADMIN): tests that need one skip with the reason where it cannot be made.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def _tmpfs(folder: Path, options: str) -> Iterator[Path | None]:
    """``folder`` with a tmpfs mounted on it for the block, or ``None`` when mounting is not allowed."""
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode == 0
    try:
        yield folder if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], capture_output=True)


@contextlib.contextmanager
def read_only_folder(parent: Path) -> Iterator[Path | None]:
    """A folder nothing can be written into, or ``None`` when this machine cannot make one."""
    folder = parent / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:
        with _tmpfs(folder, "size=64k,ro") as mounted:
            yield mounted
        return
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@contextlib.contextmanager
def small_disk(parent: Path, size: str = "192k") -> Iterator[Path | None]:
    """A folder on a file system of ``size`` bytes (a tmpfs), or ``None`` when it cannot be mounted."""
    folder = parent / "small-disk"
    folder.mkdir()
    with _tmpfs(folder, f"size={size}") as mounted:
        yield mounted

"""Atomic output files: write to a temporary file in the same folder, then move it into place.

Every table, JSON, YAML, HTML and PNG that dlradiomics writes goes through :func:`atomic_path`
(or one of the ``write_*_atomic`` helpers built on it). A reader, a kill or a full disk can then
only ever see the previous complete file or the new complete file, never a half-written one:
``os.replace`` within one folder is atomic on POSIX and Windows, and the temporary file is
removed when the write fails.

The temporary name starts with a dot and ends in ``.partial`` (``.results.csv.1a2b3c.partial``), so
a file left behind by a hard kill (SIGKILL, power loss) is recognisable and matches no ``*.csv``
pattern. Writers that pick the format from the suffix must be given the format explicitly
(:func:`write_png_atomic` does so).

This module imports nothing else of the package: every room may use it.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PARTIAL_SUFFIX = ".partial"


class OutputFolderError(OSError):
    """An output folder that cannot be written: read-only, not a folder, under /proc, no space.

    The message says which folder, why, and what to do instead.
    """


def partial_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary path beside ``path`` (same folder, so the final move is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one step.

    The folder of ``path`` is created when missing. When the body raises (a full disk, a bug, a
    ``KeyboardInterrupt``), the temporary file is removed, ``path`` keeps its previous content,
    and the exception propagates; an ``OSError`` is re-raised naming ``path``.

    Args:
        path: the file to produce.
        fsync: flush the file to disk before the move, so that a crash of the machine right
            after the move cannot leave an empty file under the final name.

    Yields:
        The temporary path; write the complete file there (without relying on its suffix).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_path(final)
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(errno.ENOENT, f"the writer produced no file for {final}", str(temporary))
        if fsync:
            _fsync_file(temporary)
        os.replace(temporary, final)
    except OSError as error:
        _remove_quietly(temporary)
        if error.filename == str(final) or not error.errno:
            raise
        # OSError(errno, ...) builds the matching subclass (PermissionError, ...), so callers' handlers still apply.
        raise OSError(error.errno, f"cannot write {final}: {error.strerror or error}", str(final)) from error
    except BaseException:
        _remove_quietly(temporary)
        raise


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # the original error matters more than a leftover temporary file


def write_atomic(path: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """Write ``path`` atomically with a function that writes a complete file to a given path.

    Args:
        path: the file to produce.
        writer: called with the temporary path, e.g. ``lambda tmp: frame.to_parquet(tmp)``.

    Returns:
        ``path``, as a ``Path``.
    """
    with atomic_path(path) as temporary:
        writer(temporary)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write bytes atomically; returns ``path``."""
    return write_atomic(path, lambda temporary: temporary.write_bytes(data))


def write_text_atomic(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write text atomically (UTF-8 by default); returns ``path``."""
    return write_atomic(path, lambda temporary: temporary.write_text(text, encoding=encoding))


def write_json_atomic(path: str | os.PathLike[str], value: Any, *, indent: int | None = 2, **dumps: Any) -> Path:
    """Write ``json.dumps(value)`` (plus a final newline) atomically; ``dumps`` go to ``json.dumps``."""
    return write_text_atomic(path, json.dumps(value, indent=indent, **dumps) + "\n")


def write_yaml_atomic(path: str | os.PathLike[str], value: Any, *, sort_keys: bool = False, header: str = "") -> Path:
    """Write ``value`` as YAML (``yaml.safe_dump``) atomically, after an optional comment ``header``."""
    import yaml

    return write_text_atomic(path, header + yaml.safe_dump(value, sort_keys=sort_keys))


def write_csv_atomic(frame: Any, path: str | os.PathLike[str], **to_csv: Any) -> Path:
    """Write a pandas DataFrame as CSV atomically (``index=False`` unless given)."""
    to_csv.setdefault("index", False)
    return write_atomic(path, lambda temporary: frame.to_csv(temporary, **to_csv))


def write_parquet_atomic(frame: Any, path: str | os.PathLike[str], **to_parquet: Any) -> Path:
    """Write a pandas DataFrame as Parquet atomically (``index=False`` unless given)."""
    to_parquet.setdefault("index", False)
    return write_atomic(path, lambda temporary: frame.to_parquet(temporary, **to_parquet))


def write_png_atomic(picture: Any, path: str | os.PathLike[str], **save: Any) -> Path:
    """Save a matplotlib figure (``savefig``) or a Pillow image (``save``) as PNG atomically.

    Args:
        picture: a ``matplotlib.figure.Figure`` or a ``PIL.Image.Image``.
        path: the ``.png`` file.
        save: extra arguments of ``savefig`` / ``Image.save`` (``dpi=110``).
    """
    if hasattr(picture, "savefig"):
        return write_atomic(path, lambda temporary: picture.savefig(temporary, format="png", **save))
    return write_atomic(path, lambda temporary: picture.save(temporary, format="PNG", **save))


def check_writable_folder(path: str | os.PathLike[str], *, what: str = "output folder") -> Path:
    """Create ``path`` if needed and prove that a file can be written in it, before any work starts.

    Args:
        path: the folder.
        what: how to call it in the message ("output folder", "feature store").

    Returns:
        The folder as an absolute ``Path``.

    Raises:
        OutputFolderError: it is a file, cannot be created, or refuses a new file (read-only,
            permissions, a pseudo file system such as /proc, no space left).
    """
    folder = Path(os.path.abspath(os.path.expanduser(path)))
    hint = f"choose another {what} or fix its permissions"
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(errno.ENOTDIR, f"{what} {folder} is a file, not a folder; {hint}", str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = partial_path(folder / "write-test")
        with open(probe, "wb") as stream:
            stream.write(b"dlradiomics write test\n")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.ENOSPC:
            hint = f"free some space or choose another {what}"
        if folder.parts[1:2] in (("proc",), ("sys",), ("dev",)):
            reason += f" (/{folder.parts[1]} is a view of the running system, not a place for files)"
        raise OutputFolderError(error.errno or errno.EACCES,
                                f"cannot write in the {what} {folder}: {reason}; {hint}", str(folder)) from None
    return folder

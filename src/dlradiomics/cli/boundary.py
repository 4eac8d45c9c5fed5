"""The one error boundary of every command: a message for people, never a traceback.

Every command of the ``dlradiomics`` app runs inside :class:`GuardedGroup.invoke`:

- a *known problem* (an error type listed in :data:`KNOWN_ERRORS`, or an ``OSError`` such as a
  full disk or a read-only folder) prints one message: what is wrong, where, and how to fix it;
  exit status 2;
- anything else is *unexpected*: one line says what happened, the traceback goes to a crash log
  in the command's output folder (or the user's cache folder when there is none) and the line
  names that file and ``--debug``; exit status 3;
- ``--debug`` (a global option, or ``DLRADIOMICS_DEBUG=1``) lets every error through with its
  traceback;
- Ctrl-C exits with status 130 and says that the outputs written so far are intact.

A command tells the boundary where its outputs go with :func:`prepare_output_folder` (which
also proves the folder writable before any work starts) or :func:`note_output_folder`.

Another room makes an error type known by giving the class ``known_problem = True`` (and, if it
likes, ``hint = "what to do"``), by naming it in :data:`KNOWN_ERRORS` (module, class name, what to
do), or by raising one of the types already listed.
"""

from __future__ import annotations

import errno
import os
import platform
import sys
import tempfile
import traceback
from datetime import datetime, timezone
from pathlib import Path

import typer
from typer.core import TyperGroup

try:  # typer (pinned) vendors click; its usage errors derive from this class, not from click's
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:  # pragma: no cover - a typer that uses click itself
    from click import ClickException as _ClickException

EXIT_KNOWN_PROBLEM = 2
EXIT_UNEXPECTED = 3
EXIT_INTERRUPTED = 130
DEBUG_ENVIRONMENT = "DLRADIOMICS_DEBUG"
# What the running command told the boundary; reset when a command starts (commands run one at a time).
_state: dict[str, object] = {"debug": False, "output_folder": None}

# (module, class name, what to do). A class is looked up only when its module is already imported:
# an error of a module nobody imported cannot have been raised, and importing torch to check would
# cost seconds.
KNOWN_ERRORS: tuple[tuple[str, str, str], ...] = (
    ("dlradiomics.cohort.problems", "ManifestError",
     "fix the manifest as listed (`dlradiomics manifest check MANIFEST` lists every problem; docs/manifest.md "
     "describes the format), then run again"),
    ("dlradiomics.study.settings", "StudySettingsError",
     "edit the study file (`dlradiomics init` writes a commented example)"),
    ("dlradiomics.study.preflight", "PreflightError", ""),
    ("dlradiomics.io.safe_yaml", "YamlInputError", ""),
    ("dlradiomics.io.errors", "ImageReadError", "check the file, or fix its manifest row"),
    ("dlradiomics.io.atomic", "OutputFolderError", ""),
    ("dlradiomics.bundle", "BundleError",
     "give the model folder a study run wrote (OUTPUT/runs/<timestamp>/model), unchanged"),
    ("dlradiomics.features.deep.weights", "BackboneWeightsError", ""),
    ("dlradiomics.features.radiomic.families", "FamilySettingsError",
     "fix the radiomics section of the study file (or the PyRadiomics parameter file)"),
)

# An OSError with one of these codes is about the user's files or machine, not a bug.
_KNOWN_ERRNOS = {
    errno.ENOSPC: "free some disk space or write to another folder",
    errno.EDQUOT: "free some space in your quota or write to another folder",
    errno.EROFS: "write to a folder on a writable file system",
    errno.EACCES: "choose a file or folder you may use, or fix its permissions",
    errno.EPERM: "choose a file or folder you may use, or fix its permissions",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path: a part of it is a file, not a folder",
    errno.EISDIR: "give a file, not a folder",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.EFBIG: "write to a file system that allows larger files",
    errno.EMFILE: "raise the open-files limit (ulimit -n) or use fewer worker processes",
}


class GuardedGroup(TyperGroup):
    """The app's command group: runs each command inside the error boundary."""

    def invoke(self, ctx: typer.Context):
        _state.update(debug=False, output_folder=None)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, _ClickException):
            raise  # typer.Exit, usage errors: typer already says what to do
        except KeyboardInterrupt:
            if _debugging():
                raise
            typer.echo("interrupted; every output written before was left intact (outputs are written "
                       "atomically, so no half-written file replaced a good one)", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as error:  # noqa: BLE001 - this is the boundary: every error ends here
            if _debugging():
                raise
            raise typer.Exit(report_error(error, ctx.invoked_subcommand)) from None


def _debugging() -> bool:
    return bool(_state["debug"]) or os.environ.get(DEBUG_ENVIRONMENT, "") not in ("", "0")


def enable_debug(value: bool) -> None:
    """Record the global ``--debug`` flag (called by the app's callback)."""
    _state["debug"] = bool(value)


def note_output_folder(path: str | os.PathLike[str]) -> None:
    """Tell the boundary where the running command writes, for its crash log."""
    _state["output_folder"] = Path(path)


def prepare_output_folder(path: str | os.PathLike[str], *, what: str = "output folder") -> Path:
    """Create the command's output folder and prove it writable, before any work starts.

    Args:
        path: the folder (``--out``).
        what: how to call it in the message.

    Returns:
        The folder, absolute.

    Raises:
        OutputFolderError: it cannot be written (read-only, under /proc, a file, no space).
    """
    from dlradiomics.io.atomic import check_writable_folder

    folder = check_writable_folder(path, what=what)
    note_output_folder(folder)
    return folder


def known_problem_hint(error: BaseException) -> str | None:
    """What to do about ``error`` when it is a known problem (possibly ``""``), else ``None``."""
    if getattr(type(error), "known_problem", False) is True:
        return str(getattr(type(error), "hint", "") or "")
    for module_name, class_name, hint in KNOWN_ERRORS:
        module = sys.modules.get(module_name)
        known = getattr(module, class_name, None) if module is not None else None
        if isinstance(known, type) and isinstance(error, known):
            return hint
    if isinstance(error, OSError) and error.errno in _KNOWN_ERRNOS:
        return _KNOWN_ERRNOS[error.errno]
    return None


def report_error(error: Exception, subcommand: str | None = None) -> int:
    """Print what went wrong for people and return the exit status (see the module docstring).

    Args:
        error: the exception that ended the command.
        subcommand: the command's name, for the message.
    """
    hint = known_problem_hint(error)
    if hint is not None:
        message = str(error).strip() or type(error).__name__
        if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
            message = f"{error.filename}: {message}"
        typer.echo(f"error: {message}", err=True)
        if hint and hint not in message:
            typer.echo(f"  what to do: {hint}", err=True)
        return EXIT_KNOWN_PROBLEM
    command = " ".join(["dlradiomics"] + ([subcommand] if subcommand else []))
    output_folder = _state["output_folder"]
    log = write_crash_log(error, output_folder if isinstance(output_folder, Path) else None, command)
    first_line = (str(error).strip().splitlines() or [""])[0][:300]
    typer.echo(f"error: unexpected {type(error).__name__} in `{command}`: {first_line}", err=True)
    where = f"the traceback is in {log}" if log else "the traceback could not be saved"
    typer.echo(f"  {where}; run `dlradiomics --debug {subcommand or 'COMMAND'} ...` to see it here, and please "
               "report it", err=True)
    return EXIT_UNEXPECTED


def crash_log_folders(output_folder: Path | None) -> list[Path]:
    """Where a crash log may go, in order: the output folder, the user's cache, the temp folder."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlradiomics" / "crash-logs"
    folders = [Path(output_folder)] if output_folder is not None else []
    return folders + [cache, Path(tempfile.gettempdir()) / "dlradiomics-crash-logs"]


def write_crash_log(error: BaseException, output_folder: Path | None, command: str) -> Path | None:
    """Write the traceback and the context of an unexpected error; the path, or None if nowhere worked."""
    from dlradiomics.io.atomic import write_text_atomic

    stamp = datetime.now(timezone.utc)
    text = "\n".join([
        f"dlradiomics crash log, {stamp.isoformat(timespec='seconds')}",
        f"command: {' '.join(sys.argv) or command}",
        f"dlradiomics {_package_version()}, Python {platform.python_version()}, {platform.platform()}",
        "",
        "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    ])
    name = f"crash-{stamp.strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}.log"
    for folder in crash_log_folders(output_folder):
        try:
            return write_text_atomic(folder / name, text)
        except OSError:
            continue  # a read-only output folder may be the very problem; try the next place
    return None


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("dlradiomics")
    except Exception:  # noqa: BLE001 - a crash report must not fail on a missing distribution
        return "(version unknown)"

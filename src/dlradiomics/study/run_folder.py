"""The folder of one run: settings, library versions, input hashes and the log, beside the results.

A reader of a result must be able to tell exactly what produced it: these files are written
before any computation starts, so even a failed run leaves its provenance behind.

A run folder says whether it finished: ``status.json`` holds ``running`` from the start,
``complete`` only once every output is written (and then a ``COMPLETE`` file appears too), or
``failed`` with the error, whose traceback is in ``run.log``. A folder still ``running`` whose
process is gone was killed. Every file is written atomically (`dlradiomics.io.atomic`).
"""

from __future__ import annotations

import json
import logging
import os
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from dlradiomics.io import FileHashCache, sha256_file
from dlradiomics.io.atomic import write_csv_atomic, write_json_atomic, write_text_atomic, write_yaml_atomic

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
STATUS_FILE = "status.json"
COMPLETE_MARKER = "COMPLETE"
LATEST_LINK = "latest"  # <output>/latest -> runs/<the newest finished run>
LATEST_FILE = "LATEST"  # its stand-in where the file system has no symbolic links
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFolder:
    """Paths inside one run folder `<output>/runs/<timestamp>/`.

    Args:
        root: the run folder.
    """

    root: Path

    @property
    def log_file(self) -> Path:
        """The run's log."""
        return self.root / "run.log"

    @property
    def report_dir(self) -> Path:
        """Where report.html, tables/ and figures/ go."""
        return self.root

    @property
    def figures_dir(self) -> Path:
        """Report figures (PNG)."""
        return self.root / "figures"

    @property
    def bundle_dir(self) -> Path:
        """The fitted final model bundle."""
        return self.root / "model"

    @property
    def status_file(self) -> Path:
        """`status.json`: running, complete or failed (with the error)."""
        return self.root / STATUS_FILE


def create_run_folder(output_dir: Path, now: datetime | None = None) -> RunFolder:
    """Create `output_dir/runs/<UTC timestamp>/` (with a suffix if that name is taken).

    Args:
        output_dir: the study's output folder.
        now: the time stamp to use (default: now, UTC).

    Returns:
        The new run folder.
    """
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    runs = Path(output_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    candidate, suffix = runs / stamp, 1
    while candidate.exists():
        suffix += 1
        candidate = runs / f"{stamp}-{suffix}"
    candidate.mkdir()
    (candidate / "figures").mkdir()
    run = RunFolder(candidate)
    _write_status(run, "running")
    return run


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_status(run: RunFolder, status: str, **details: Any) -> None:
    previous = read_run_status(run.root) if run.status_file.exists() else {}
    record = {"status": status, "started_utc": previous.get("started_utc", _now()), "pid": os.getpid(), **details}
    if status != "running":
        record["finished_utc"] = _now()
    write_json_atomic(run.status_file, record)


def read_run_status(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The status record of a run folder (``{"status": "unknown"}`` when it has none).

    Args:
        folder: the run folder.
    """
    path = Path(folder) / STATUS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"status": "unknown"}


def mark_run_complete(run: RunFolder) -> None:
    """Mark the run finished: call it only after its last output is written."""
    _write_status(run, "complete")
    write_text_atomic(run.root / COMPLETE_MARKER, f"completed {_now()}\n")
    logger.info("run complete: %s", run.root)


def mark_run_failed(run: RunFolder, error: BaseException) -> None:
    """Mark the run failed: the error in `status.json`, its traceback in `run.log`.

    Never raises: a failure to record the failure (a full disk, say) must not hide the error itself.
    """
    summary = f"{type(error).__name__}: {error}".strip()
    try:
        logger.error("run failed: %s", summary, exc_info=(type(error), error, error.__traceback__))
    except Exception:  # noqa: BLE001 - see the docstring
        pass
    try:
        _write_status(run, "failed", error=summary)
    except OSError:
        pass


def point_latest_at(run: RunFolder) -> Path:
    """Point `<output>/latest` at a finished run, atomically, so it never names a half-written run.

    The link sits beside `runs/` (so `runs/` holds run folders only), is relative (the output
    folder can move) and is replaced in one rename. Where symbolic links are unavailable,
    `<output>/LATEST` (a text file holding `runs/<name>`) is replaced instead.

    Args:
        run: the run that just finished.

    Returns:
        The link, or the LATEST file.
    """
    output = run.root.parent.parent
    target = Path(run.root.parent.name) / run.root.name
    staged = output / f".{LATEST_LINK}.{os.getpid()}"
    try:
        staged.unlink(missing_ok=True)
        staged.symlink_to(target, target_is_directory=True)
        os.replace(staged, output / LATEST_LINK)
        return output / LATEST_LINK
    except OSError:
        staged.unlink(missing_ok=True)
    write_text_atomic(output / LATEST_FILE, f"{target.as_posix()}\n")
    return output / LATEST_FILE


def write_provenance(run: RunFolder, settings: dict, cohort_table: pd.DataFrame, manifest_path: Path, *,
                     versions: dict[str, str], hashes: FileHashCache | None = None) -> None:
    """Write settings.yaml, versions.json and input_hashes.csv into the run folder.

    ``input_hashes.csv`` holds the SHA-256 of the bytes of the manifest and of every image and
    mask. Images and masks are hashed through ``hashes``, which re-reads a file only when its size,
    modification time or inode changed since it last hashed it (a file rewritten in place within
    one timestamp tick of being hashed is never remembered, see `dlradiomics.io.FileHashCache`);
    the manifest is always hashed afresh.

    Args:
        run: the run folder.
        settings: the validated settings as plain values.
        cohort_table: the cohort's rows (paths of every image and mask).
        manifest_path: the manifest file.
        versions: the library versions of the run (`dlradiomics.versions.library_versions`); the
            platform is added here.
        hashes: the file hash cache to hash images and masks through (default: an empty one, kept
            in memory: every file is hashed; a file that appears twice, once).
    """
    hashes = hashes if hashes is not None else FileHashCache()
    write_yaml_atomic(run.root / "settings.yaml", settings)
    write_json_atomic(run.root / "versions.json", {**versions, "platform": platform.platform()})
    rows = [{"roi_id": "(manifest)", "file": str(manifest_path), "sha256": sha256_file(manifest_path)}]
    for roi_id, image, mask in zip(cohort_table["roi_id"], cohort_table["image"], cohort_table["mask"]):
        for file in (image, mask):
            rows.append({"roi_id": roi_id, "file": str(file), "sha256": hashes.sha256(file)})
    write_csv_atomic(pd.DataFrame(rows), run.root / "input_hashes.csv")


def attach_log_file(run: RunFolder) -> logging.Handler:
    """Send the package's log records to the run's log file; detach the returned handler when done."""
    handler = logging.FileHandler(run.log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    package_logger = logging.getLogger("dlradiomics")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    return handler

"""The folder of one run: settings, library versions, input hashes and the log, beside the results.

A reader of a result must be able to tell exactly what produced it: these files are written
before any computation starts, so even a failed run leaves its provenance behind.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import yaml

RECORDED_PACKAGES = ("dlradiomics", "numpy", "scipy", "pandas", "scikit-learn", "xgboost-cpu", "lightgbm",
                     "pyradiomics-bhklab", "SimpleITK", "torch", "torchvision", "timm", "grad-cam", "skops")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    return RunFolder(candidate)


def library_versions() -> dict[str, str]:
    """Versions of Python, the platform and the packages that shape results."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def write_provenance(run: RunFolder, settings: dict, cohort_table: pd.DataFrame, manifest_path: Path) -> None:
    """Write settings.yaml, versions.json and input_hashes.csv into the run folder.

    Args:
        run: the run folder.
        settings: the validated settings as plain values.
        cohort_table: the cohort's rows (paths of every image and mask).
        manifest_path: the manifest file.
    """
    from dlradiomics.io import sha256_file

    (run.root / "settings.yaml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    (run.root / "versions.json").write_text(json.dumps(library_versions(), indent=2), encoding="utf-8")
    rows = [{"roi_id": "(manifest)", "file": str(manifest_path), "sha256": sha256_file(manifest_path)}]
    for _, row in cohort_table.iterrows():
        for column in ("image", "mask"):
            rows.append({"roi_id": row["roi_id"], "file": str(row[column]), "sha256": sha256_file(row[column])})
    pd.DataFrame(rows).to_csv(run.root / "input_hashes.csv", index=False)


def attach_log_file(run: RunFolder) -> logging.Handler:
    """Send the package's log records to the run's log file; detach the returned handler when done."""
    handler = logging.FileHandler(run.log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    package_logger = logging.getLogger("dlradiomics")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    return handler

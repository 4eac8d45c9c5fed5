"""`Study`: one study file to a run folder with the report, the tables, the figures and the fitted model.

Stages, in order: cohort and QA, provenance, features (through the shared store), the experiment
grid in nested patient-grouped CV, the final model (the configuration chosen by inner CV, refitted
on all patients, threshold frozen from inner out-of-fold predictions), the permuted-label canary,
Grad-CAM, and the report. Grid and canary results are cached in the store under a key of their
inputs, so a re-run with unchanged inputs recomputes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dlradiomics.study.settings import StudySettings

logger = logging.getLogger(__name__)


@dataclass
class StudyResult:
    """What a run produced.

    Args:
        run_dir: the run folder (`<output>/runs/<timestamp>/`).
        report_path: the self-contained `report.html`.
        bundle_path: the final model bundle folder (None when no configuration completed).
        results: the long results table (one row per configuration).
        best: the configuration chosen by inner CV, with its out-of-fold metrics.
        stage_seconds: wall time of each stage.
        unused_rows: every manifest row the study did not use, with the reason.
        warnings: what the preflight checks found that did not stop the study.
        n_manifest_rows: rows in the manifest.
    """

    run_dir: Path
    report_path: Path
    bundle_path: Path | None
    results: pd.DataFrame
    best: pd.Series | None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    unused_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    n_manifest_rows: int = 0


class Study:
    """A study described by settings; `run()` does everything the study file asks.

    Args:
        settings: the validated study settings.
    """

    def __init__(self, settings: StudySettings):
        self.settings = settings

    @classmethod
    def from_yaml(cls, path: str | Path) -> Study:
        """Read a study file.

        Args:
            path: the study YAML.

        Raises:
            StudySettingsError: the file is missing or holds an invalid setting.
        """
        return cls(StudySettings.from_yaml(path))

    def run(self, *, progress: bool = True, opening: str | None = None) -> StudyResult:
        """Run the study into a new run folder.

        Args:
            progress: show a progress display for each long stage.
            opening: the report's first sentence (default: the study's `report.note`).

        Returns:
            The `StudyResult` with the paths of the report and the bundle.
        """
        from dlradiomics.study.pipeline import run_study

        return run_study(self.settings, progress=progress, opening=opening)


class StageTimer:
    """Logs each stage's start and end with rich status output, and keeps the wall times."""

    def __init__(self, progress: bool):
        from rich.console import Console

        self.console = Console(stderr=True, quiet=not progress)
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, *, spinner: bool = False) -> Iterator[None]:
        """Time one stage under a rich heading.

        Args:
            name: the stage's name.
            spinner: show a live spinner with the elapsed time, for stages without progress bars
                of their own (extraction shows tqdm bars, which a live display would garble).
        """
        self.console.rule(f"[bold]{name}")
        logger.info("stage started: %s", name)
        started = time.perf_counter()
        try:
            if spinner:
                with self.console.status(f"{name} ..."):
                    yield
            else:
                yield
        finally:
            self.seconds[name] = time.perf_counter() - started
            logger.info("stage finished: %s (%.1f s)", name, self.seconds[name])
            self.console.print(f"[green]done[/green] {name} in {self.seconds[name]:.1f} s")


def table_fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a table (values, index and column names), for cache keys."""
    from hashlib import sha256

    digest = sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update(json.dumps([str(column) for column in frame.columns]).encode())
    return digest.hexdigest()


def cached_frames(store: Any, namespace: str, key_parts: dict[str, Any], names: list[str],
                  compute) -> dict[str, pd.DataFrame]:
    """Read several tables from the store, or compute and store them.

    Args:
        store: a `dlradiomics.store.FeatureStore`.
        namespace: store namespace (e.g. "grid").
        key_parts: everything the result depends on (hashed into the key).
        names: table names `compute` returns.
        compute: callable returning `{name: DataFrame}`.

    Returns:
        `{name: DataFrame}` and whether they came from the store, as `(frames, cached)`.
    """
    from dlradiomics.store import content_key

    keys = {name: content_key({**key_parts, "table": name}) for name in names}
    stored = {name: store.get(namespace, key) for name, key in keys.items()}
    if all(frame is not None for frame in stored.values()):
        logger.info("%s: every table read from the store (inputs unchanged)", namespace)
        return stored, True
    computed = compute()
    for name, key in keys.items():
        store.put(namespace, key, computed[name])
    return computed, False

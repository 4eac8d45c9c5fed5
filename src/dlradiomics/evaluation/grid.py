"""Running the experiment grid: every model configuration cross-validated on the same outer folds.

Every configuration is cross-validated on the same patient-grouped outer folds, so their
out-of-fold predictions can be compared patient by patient (DeLong). The configuration space is in
`dlradiomics.evaluation.configurations`, how a configuration becomes an estimator in
`dlradiomics.models.factory`, and the analyses of the results in `dlradiomics.evaluation.grid_result`.

The work is split into cells (`dlradiomics.evaluation.cells`: configurations x one outer fold x
label worlds) that share identical fits, and the cells run in this process, in local worker
processes or on a Dask cluster (`dlradiomics.evaluation.scheduling`). Each modelling table is
built once per grid. A configuration's predictions are those of cross-validating it alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from dlradiomics.evaluation.cells import GRID_WORLD, CellSettings, ModelTable, TableKey
from dlradiomics.evaluation.configurations import CONFIG_COLUMNS, default_modality_sets, grid_configurations
from dlradiomics.evaluation.crossval import FoldScheme, resolve_fold_table
from dlradiomics.evaluation.grid_result import GridResult, GridRunStats
from dlradiomics.evaluation.metrics import summarise_predictions
from dlradiomics.evaluation.python_strings import PYTHON_STRINGS, with_string_storage
from dlradiomics.evaluation.scheduling import (
    ProgressCallback,
    dask_client,
    dask_worker_count,
    execute_cells,
    plan_cells,
)
from dlradiomics.evaluation.splits import (
    TRAIN_ONLY,
    RepeatedPatientKFold,
    check_fold_table,
    evaluated_patients,
    patient_labels_of,
)
from dlradiomics.evaluation.threshold import ThresholdRule
from dlradiomics.models import (
    CLASSIFIERS,
    FUSIONS,
    SOURCES,
    TERM_COLUMNS,
    DLRComposition,
    ModelConfiguration,
    SelectionStep,
    build_model_table,
)


def run_grid(
    feature_tables: Mapping[str, pd.DataFrame],
    *,
    sources: Sequence[str] = SOURCES,
    modality_sets: Sequence[Sequence[str]] | None = None,
    fusions: Sequence[str] = FUSIONS,
    classifiers: Sequence[str] = CLASSIFIERS,
    custom_classifiers: Mapping[str, BaseEstimator] | None = None,
    outer: pd.DataFrame | FoldScheme | None = None,
    threshold: ThresholdRule = "youden",
    inner_splits: int = 3,
    selections: Mapping[str, Sequence[SelectionStep] | None] | None = None,
    dlr: DLRComposition | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    dlr_components: int | None = None,
    scheduler: Any = None,
    progress: ProgressCallback | None = None,
) -> GridResult:
    """Cross-validate every configuration of the grid on the same patient-grouped outer folds.

    Args:
        feature_tables: Image-level feature tables by kind (``"radiomic"``, ``"deep"``).
        sources: Feature sources to run.
        modality_sets: Modality sets; default `default_modality_sets` of the modalities present.
        fusions: Fusion strategies for multi-block configurations.
        classifiers: Classifier names: registered ones (``CLASSIFIERS``) or keys of
            ``custom_classifiers``.
        custom_classifiers: Unfitted classifiers of the caller's own, by the name results show.
        outer: Fold table or fold scheme (default stratified grouped 5-fold), computed once over
            all patients so that every configuration sees the same folds.
        threshold: Threshold rule applied to inner out-of-fold predictions.
        inner_splits: Inner folds for the threshold and the inner AUC.
        selections: Selection steps per source, overriding `dlradiomics.models.DEFAULT_SELECTIONS`.
        dlr: How DLR fusion compresses its features (default: the paper's composition).
        n_boot: Bootstrap resamples of each CI.
        seed: Seed of folds, models and bootstrap.
        n_jobs: Local worker processes running cells at once.
        scheduler: A Dask scheduler address (``"tcp://host:8786"``) or ``distributed.Client``:
            run the cells on that cluster instead of local processes.
        progress: Called with a `dlradiomics.evaluation.scheduling.GridProgress` as cells finish.
        dlr_components: The earlier spelling of ``dlr.whole_table_components``.

    Returns:
        The `GridResult`.

    Raises:
        ValueError: On an unknown classifier name, source or fusion.
    """
    return run_grid_worlds(
        {GRID_WORLD: feature_tables}, sources=sources, modality_sets=modality_sets, fusions=fusions,
        classifiers=classifiers, custom_classifiers=custom_classifiers, outer=outer, threshold=threshold,
        inner_splits=inner_splits, selections=selections, dlr=dlr, n_boot=n_boot, seed=seed, n_jobs=n_jobs,
        dlr_components=dlr_components, scheduler=scheduler, progress=progress,
    )[GRID_WORLD]


def run_grid_worlds(
    worlds: Mapping[str, Mapping[str, pd.DataFrame]],
    *,
    sources: Sequence[str] = SOURCES,
    modality_sets: Sequence[Sequence[str]] | None = None,
    fusions: Sequence[str] = FUSIONS,
    classifiers: Sequence[str] = CLASSIFIERS,
    custom_classifiers: Mapping[str, BaseEstimator] | None = None,
    outer: pd.DataFrame | FoldScheme | None = None,
    threshold: ThresholdRule = "youden",
    inner_splits: int = 3,
    selections: Mapping[str, Sequence[SelectionStep] | None] | None = None,
    dlr: DLRComposition | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    dlr_components: int | None = None,
    scheduler: Any = None,
    progress: ProgressCallback | None = None,
) -> dict[str, GridResult]:
    """The grid in several label worlds at once: the same features and folds, different labels.

    The first world's labels define the outer folds, which every world uses; the features of
    every world must be those of the first (only labels differ, as with the permuted-label
    canary, `dlradiomics.evaluation.canary.run_grid_with_canary`). Running the worlds together
    lets them share the fits that read no labels. Arguments as for `run_grid`.

    Args:
        worlds: Feature tables (as for `run_grid`) per label world name, the real labels first.

    Returns:
        A `GridResult` per world.
    """
    started = time.perf_counter()
    unknown = [name for name in classifiers if name not in CLASSIFIERS and name not in (custom_classifiers or {})]
    if unknown:
        raise ValueError(f"unknown classifier(s) {unknown}; registered: {list(CLASSIFIERS)}, "
                         f"own: {sorted(custom_classifiers or {})}")
    world_names = list(worlds)
    first = worlds[world_names[0]]
    present = _modalities_by_kind(first)
    all_modalities = sorted(set().union(*present.values()))
    modality_sets = default_modality_sets(all_modalities) if modality_sets is None else modality_sets
    to_run, skipped = grid_configurations(sources, modality_sets, fusions, classifiers)
    patient_labels = patient_labels_of(first)
    outer = RepeatedPatientKFold(seed=seed) if outer is None else outer
    fold_table = resolve_fold_table(outer, patient_labels.to_numpy(), patient_labels.index.to_numpy())
    # A given fold table (a manifest column, a split file) may name patients without features; the
    # grid's patients are those of the feature tables, whom "scores every patient" refers to.
    fold_table = fold_table[fold_table["patient_id"].astype(str).isin(patient_labels.index)].reset_index(drop=True)

    runnable, unavailable = [], []
    for configuration in to_run:
        missing = [
            f"{modality}.{kind}"
            for kind in configuration.kinds
            for modality in configuration.modalities
            if modality not in present.get(kind, set())
        ]
        if missing:
            unavailable.append((configuration, f"no features for block(s) {missing}"))
        else:
            runnable.append(configuration)

    tables = _model_tables(worlds, runnable)
    settings = CellSettings(
        threshold=threshold, inner_splits=inner_splits, seed=seed,
        estimator_options=dict(selections=selections, custom_classifiers=custom_classifiers,
                               dlr=dlr, dlr_components=dlr_components, inner_cv=inner_splits,
                               random_state=seed),
    )
    predictions: dict[tuple[str, ModelConfiguration], list[tuple[tuple[int, int], pd.DataFrame]]] = {}
    failures: dict[tuple[str, ModelConfiguration], list[tuple[tuple[int, int], str]]] = {}
    terms: dict[tuple[str, ModelConfiguration], list[pd.DataFrame]] = {}
    seconds: dict[tuple[str, ModelConfiguration], float] = {}
    stats = GridRunStats()
    with dask_client(scheduler) as client:
        stats.workers = dask_worker_count(client) if client is not None else max(1, n_jobs)
        cells = plan_cells(runnable, _outer_folds(fold_table), world_names, stats.workers)
        stats.cells = len(cells)
        for outcome in execute_cells(cells, tables, fold_table, settings, n_jobs=n_jobs, client=client,
                                     progress=progress):
            where = (outcome.cell.repeat, outcome.cell.fold)
            for key, frame in outcome.predictions.items():
                predictions.setdefault(key, []).append((where, frame))
            for key, frame in outcome.terms.items():
                terms.setdefault(key, []).append(frame)
            for key, message in outcome.failures.items():
                failures.setdefault(key, []).append((where, message))
            for key, spent in outcome.seconds.items():
                seconds[key] = seconds.get(key, 0.0) + spent
            stats.fit_hits += outcome.cache.hits
            stats.fit_misses += outcome.cache.misses
            stats.fit_seconds_saved += outcome.cache.seconds_saved

    results = {}
    for world in world_names:
        rows, frames, fitted_terms = [], [], []
        for configuration in runnable:
            key = (world, configuration)
            row, oof = _summarise(configuration, tables[TableKey.of(configuration)].n_candidates(fold_table),
                                  predictions.get(key, []), failures.get(key, []), n_boot=n_boot, seed=seed)
            if "wall_s" in row:
                row["wall_s"] += seconds.get(key, 0.0)
            rows.append(row)
            if oof is not None:
                frames.append(oof)
                fitted_terms += [frame.assign(**configuration.key()) for frame in terms.get(key, []) if len(frame)]
        rows += [
            {**configuration.key(), "status": "skipped", "note": reason}
            for configuration, reason in unavailable + skipped
        ]
        oof = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*CONFIG_COLUMNS])
        terms_table = (pd.concat(fitted_terms, ignore_index=True) if fitted_terms
                       else pd.DataFrame(columns=[*CONFIG_COLUMNS, *TERM_COLUMNS, "repeat", "fold"]))
        results[world] = GridResult(results=pd.DataFrame(rows), oof=oof, fold_table=fold_table, terms=terms_table)
    stats.wall_s = time.perf_counter() - started
    for result in results.values():
        result.run_stats = stats
    return results


def _summarise(
    configuration: ModelConfiguration,
    n_candidates: int,
    fold_predictions: list[tuple[tuple[int, int], pd.DataFrame]],
    fold_failures: list[tuple[tuple[int, int], str]],
    *,
    n_boot: int,
    seed: int,
) -> tuple[dict, pd.DataFrame | None]:
    """One results row (and the out-of-fold table) of a configuration from its folds' predictions."""
    started = time.perf_counter()
    if fold_failures:
        # As when one configuration is cross-validated alone: the first fold that fails names the reason.
        reason = sorted(fold_failures, key=lambda failure: failure[0])[0][1]
        return {**configuration.key(), "status": "skipped", "note": f"could not run: {reason}"}, None
    ordered = [frame for _, frame in sorted(fold_predictions, key=lambda item: item[0])]
    try:
        if not ordered:
            raise ValueError("no outer fold has test patients of this configuration")
        oof = pd.concat(ordered, ignore_index=True)
        summary = summarise_predictions(oof, n_boot=n_boot, seed=seed)
    except ValueError as error:
        # Data that cannot support the configuration is reported in the table, not allowed to
        # stop the other configurations.
        return {**configuration.key(), "status": "skipped", "note": f"could not run: {error}"}, None
    n_scored = oof.groupby("repeat")["patient_id"].nunique().min()
    note = ""
    if n_scored < n_candidates:
        note = f"{n_candidates - n_scored} of {n_candidates} test patient(s) could not be scored (missing blocks)"
    row = {
        **configuration.key(),
        "status": "ok",
        "note": note,
        **{score: oof.groupby(["repeat", "fold"])[score].first().mean()
           for score in ("inner_auc", "inner_sensitivity", "inner_specificity")},
        **summary.to_dict(),
        "wall_s": time.perf_counter() - started,
    }
    return row, oof.assign(**configuration.key())


def _model_tables(
    worlds: Mapping[str, Mapping[str, pd.DataFrame]], configurations: Sequence[ModelConfiguration]
) -> dict[TableKey, ModelTable]:
    """Each modelling table the configurations read, built once, with the labels of every world."""
    tables = {}
    for key in dict.fromkeys(TableKey.of(configuration) for configuration in configurations):
        X, labels, groups = None, {}, None
        for world, feature_tables in worlds.items():
            X_world, y, groups_world = build_model_table(dict(feature_tables), list(key.modalities), list(key.kinds),
                                                         key.level)
            if X is None:
                X, groups = X_world, np.asarray(groups_world).astype(str)
            elif not (X_world.index.equals(X.index) and X_world.columns.equals(X.columns)):
                raise ValueError(f"label world {world!r} has other rows or columns than {list(worlds)[0]!r}")
            labels[world] = np.asarray(y).astype(int)
        # column names and patient ids as Python strings, as cells hold the text they make
        tables[key] = ModelTable(X=with_string_storage(X, PYTHON_STRINGS), groups=groups, labels=labels)
    return tables


def _outer_folds(fold_table: pd.DataFrame) -> list[tuple[int, int]]:
    check_fold_table(fold_table)
    pairs = fold_table.loc[fold_table["fold"] != TRAIN_ONLY, ["repeat", "fold"]].drop_duplicates()
    return sorted((int(repeat), int(fold)) for repeat, fold in pairs.itertuples(index=False))


def _modalities_by_kind(feature_tables: Mapping[str, pd.DataFrame]) -> dict[str, set[str]]:
    if not feature_tables:
        raise ValueError("run_grid needs at least one feature table")
    return {kind: set(table["modality"].unique()) for kind, table in feature_tables.items()}

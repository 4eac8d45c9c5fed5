"""Planning grid cells and running them: in this process, in local worker processes, or on a Dask cluster.

The planner makes enough cells to keep every worker busy to the end, and no more: each cell
shares fits among its configurations, so splitting a fold's configurations across cells costs
some sharing. It splits first by label world (the grid and its canary share only the steps that
read no labels), then each fold's configurations into contiguous chunks of similar estimated
cost, keeping configurations that read the same feature blocks together. Cells run largest
first, so that the last ones to finish are short.

Locally, this process runs cells beside joblib's loky worker processes (`dlradiomics.parallel`):
the modelling tables travel to the workers once per grid (joblib memory-maps large arrays) rather
than once per cell. On Dask the tables are scattered to
every worker once and each cell is a task (``scheduler:`` in a study file, like extraction's).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from dlradiomics.evaluation.cells import CellOutcome, CellSettings, GridCell, ModelTable, TableKey, run_cell
from dlradiomics.models import ModelConfiguration
from dlradiomics.parallel import map_unordered_here_and_in_processes

# Relative fit cost of a configuration (sources x fusion, then classifier), for scheduling and ETAs.
_SOURCE_FUSION_COST = {"single": 1.0, "early": 2.0, "ensemble": 4.0, "stacking": 4.0}
_SOURCE_COST = {"radiomic": 1.0, "deep": 1.5, "dlr": 2.0}
_CLASSIFIER_COST = {"rf": 1.6, "extra_trees": 1.4, "svm": 1.3}
CELLS_PER_WORKER = 3


@dataclass(frozen=True)
class GridProgress:
    """Where a running grid stands.

    Args:
        cells_done: cells finished.
        cells_total: cells planned.
        units_done: configuration-folds finished (a configuration on one outer fold, per label world).
        units_total: configuration-folds planned.
        cost_done: estimated cost of the finished cells.
        cost_total: estimated cost of all cells.
        elapsed_s: seconds since the grid started.
    """

    cells_done: int
    cells_total: int
    units_done: int
    units_total: int
    cost_done: float
    cost_total: float
    elapsed_s: float

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far (None before the first cell ends)."""
        if self.cost_done <= 0:
            return None
        return self.elapsed_s * (self.cost_total - self.cost_done) / self.cost_done


ProgressCallback = Callable[[GridProgress], None]


def estimated_cost(configuration: ModelConfiguration) -> float:
    """Relative cost of cross-validating one configuration on one outer fold (for scheduling only)."""
    fusion = _SOURCE_FUSION_COST.get(configuration.fusion, 2.0)
    source = _SOURCE_COST.get(configuration.source, 1.5)
    classifier = _CLASSIFIER_COST.get(configuration.classifier, 1.0)
    return fusion * source * classifier * len(configuration.modalities)


def plan_cells(
    configurations: Sequence[ModelConfiguration],
    folds: Sequence[tuple[int, int]],
    worlds: Sequence[str],
    n_workers: int,
) -> list[GridCell]:
    """Cells covering every configuration x outer fold x label world, largest first.

    Args:
        configurations: the configurations to run.
        folds: ``(repeat, fold)`` of every outer fold.
        worlds: label worlds (``"grid"``, and ``"canary"`` when the canary runs with the grid).
        n_workers: workers that will run the cells.

    Returns:
        The cells, in the order to run them.
    """
    ordered = sorted(configurations, key=_sharing_order)
    wanted = CELLS_PER_WORKER * n_workers if n_workers > 1 else 1
    world_groups = [tuple(worlds)]
    if len(folds) * len(world_groups) < wanted and len(worlds) > 1:
        world_groups = [(world,) for world in worlds]
    chunks = max(1, min(len(ordered), math.ceil(wanted / max(1, len(folds) * len(world_groups)))))
    parts = _contiguous_chunks(ordered, chunks)
    cells = [
        GridCell(repeat, fold, tuple(part), group, cost=sum(map(estimated_cost, part)) * len(group))
        for repeat, fold in folds
        for group in world_groups
        for part in parts
    ]
    return sorted(cells, key=lambda cell: -cell.cost)


def _sharing_order(configuration: ModelConfiguration) -> tuple:
    # Configurations reading the same blocks share most fits; within them, one classifier's
    # fusions share block models.
    return (configuration.modalities, configuration.kinds, configuration.classifier, configuration.fusion)


def _contiguous_chunks(ordered: list[ModelConfiguration], chunks: int) -> list[list[ModelConfiguration]]:
    """Split into ``chunks`` runs of consecutive configurations of near-equal estimated cost."""
    if chunks <= 1:
        return [list(ordered)]
    total = sum(map(estimated_cost, ordered))
    parts: list[list[ModelConfiguration]] = [[]]
    running = 0.0
    for configuration in ordered:
        cost = estimated_cost(configuration)
        boundary = total * len(parts) / chunks
        if parts[-1] and len(parts) < chunks and running + cost / 2 > boundary:
            parts.append([])
        parts[-1].append(configuration)
        running += cost
    return parts


def execute_cells(
    cells: Sequence[GridCell],
    tables: Mapping[TableKey, ModelTable],
    fold_table: pd.DataFrame,
    settings: CellSettings,
    *,
    n_jobs: int = 1,
    client: Any = None,
    progress: ProgressCallback | None = None,
) -> Iterator[CellOutcome]:
    """Run the cells and yield each outcome as it finishes.

    Args:
        cells: the planned cells.
        tables: the grid's modelling tables.
        fold_table: the outer folds.
        settings: how configurations are cross-validated.
        n_jobs: local worker processes (ignored with a client).
        client: a connected ``distributed.Client`` (see `dask_client`) to run the cells on a Dask cluster.
        progress: called after every cell with a `GridProgress`.

    Yields:
        `CellOutcome` per cell, in the order they finish.
    """
    started = time.perf_counter()
    done = {"cells": 0, "units": 0, "cost": 0.0}
    totals = (len(cells), sum(cell.n_units for cell in cells), sum(cell.cost for cell in cells))

    def report(outcome: CellOutcome) -> CellOutcome:
        done["cells"] += 1
        done["units"] += outcome.cell.n_units
        done["cost"] += outcome.cell.cost
        if progress is not None:
            progress(GridProgress(done["cells"], totals[0], done["units"], totals[1], done["cost"], totals[2],
                                  time.perf_counter() - started))
        return outcome

    if progress is not None:
        progress(GridProgress(0, totals[0], 0, totals[1], 0.0, totals[2], 0.0))
    if client is not None:
        outcomes = _run_on_dask(cells, tables, fold_table, settings, client)
    elif n_jobs > 1 and len(cells) > 1:
        outcomes = _run_in_processes(cells, tables, fold_table, settings, min(n_jobs, len(cells)))
    else:
        outcomes = (run_cell(cell, tables, fold_table, settings) for cell in cells)
    for outcome in outcomes:
        yield report(outcome)


def _run_in_processes(cells, tables, fold_table, settings, n_jobs: int) -> Iterator[CellOutcome]:
    # This process runs cells too, beside n_jobs - 1 loky workers: it has imported scikit-learn and
    # the models already, which each fresh worker pays again (2 CPU-s). The tables travel to each
    # worker once per grid, not with every cell.
    yield from map_unordered_here_and_in_processes(_run_cell_with, cells, _GridData(dict(tables), fold_table, settings),
                                                   n_jobs)


@dataclass(frozen=True)
class _GridData:
    """What every cell of a grid reads, sent to each local worker once."""

    tables: Mapping[TableKey, ModelTable]
    fold_table: pd.DataFrame
    settings: CellSettings


def _run_cell_with(cell: GridCell, data: _GridData) -> CellOutcome:
    return run_cell(cell, data.tables, data.fold_table, data.settings)


@dataclass(frozen=True)
class _ScatteredTables:
    """The modelling tables as one object, so that Dask scatters them as one piece of data."""

    tables: Mapping[TableKey, ModelTable]


def _run_cell_on_worker(cell: GridCell, scattered: _ScatteredTables, fold_table: pd.DataFrame,
                        settings: CellSettings) -> CellOutcome:
    return run_cell(cell, scattered.tables, fold_table, settings)


def _run_on_dask(cells, tables, fold_table, settings, client) -> Iterator[CellOutcome]:
    from distributed import as_completed as dask_as_completed  # imported on use: only a study with a scheduler needs Dask

    scattered = client.scatter(_ScatteredTables(dict(tables)), broadcast=True)
    folds = client.scatter(fold_table, broadcast=True)
    futures = [
        client.submit(_run_cell_on_worker, cell, scattered, folds, settings, pure=False, priority=len(cells) - position)
        for position, cell in enumerate(cells)
    ]
    for future in dask_as_completed(futures):
        yield future.result()


@contextmanager
def dask_client(scheduler: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for a scheduler address (closed afterwards), the client given, or None.

    Args:
        scheduler: None, a ``tcp://host:port`` address, or a ``distributed.Client``.

    Yields:
        The client, or None without a scheduler.
    """
    if scheduler is None:
        yield None
        return
    from distributed import Client  # imported on use: only a study with a scheduler needs Dask

    if isinstance(scheduler, Client):
        yield scheduler
        return
    client = Client(scheduler)
    try:
        yield client
    finally:
        client.close()


def dask_worker_count(client: Any) -> int:
    """Threads of a Dask cluster's workers: how many cells it runs at once."""
    return max(1, sum(client.nthreads().values()))

"""Grid cells: the unit of grid work, and the runner of one cell.

A cell is a set of model configurations cross-validated on one outer fold, in one or more label
worlds (``"grid"``: the real labels; ``"canary"``: labels permuted between patients). Inside a
cell every fit goes through one `dlradiomics.models.FitCache`, so what several configurations
would fit identically on the same training rows (a block's imputation, scaling, PCA and
selection behind seven classifiers; the block models ensemble and stacking share; the steps that
read no labels, in both label worlds) is fitted once. Each configuration is still its own
estimator, cross-validated by `dlradiomics.evaluation.crossval.fit_outer_fold` exactly as
`cross_validate_patients` does, so its predictions are those of fitting it alone.

A cell carries no data: it names its configurations, fold and worlds, and reads the modelling
tables (built once per grid, `ModelTable`) it is handed, so a scheduler ships the tables to a
worker once, not once per cell.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dlradiomics.evaluation.crossval import fit_outer_fold
from dlradiomics.evaluation.python_strings import DEFAULT_STRINGS, python_string_storage, with_string_storage
from dlradiomics.evaluation.splits import OuterFold, evaluated_patients, iter_outer_folds
from dlradiomics.evaluation.threshold import ThresholdRule
from dlradiomics.models import (
    MissingBlockWarning,
    ModelConfiguration,
    SelectionFallbackWarning,
    build_estimator,
)
from dlradiomics.models.shared_fits import FitCache, FitCacheStats, sharing_fits

GRID_WORLD = "grid"
CANARY_WORLD = "canary"


@dataclass(frozen=True)
class TableKey:
    """Which modelling table a configuration reads: its modalities, feature kinds and row level."""

    modalities: tuple[str, ...]
    kinds: tuple[str, ...]
    level: str

    @classmethod
    def of(cls, configuration: ModelConfiguration) -> TableKey:
        """The table of a configuration."""
        return cls(tuple(configuration.modalities), tuple(configuration.kinds), configuration.level)


@dataclass(frozen=True)
class ModelTable:
    """One modelling table, built once per grid, with the labels of every label world.

    Args:
        X: features (``patient_id`` index).
        groups: patient of each row (strings).
        labels: row labels (0/1) per label world.
    """

    X: pd.DataFrame
    groups: np.ndarray
    labels: Mapping[str, np.ndarray]

    @property
    def n_patients(self) -> int:
        """Patients with at least one row."""
        return int(pd.unique(self.groups).size)

    def n_candidates(self, fold_table: pd.DataFrame) -> int:
        """Patients of this table that the folds test (training-only patients are never scored, by design)."""
        return int(pd.Index(pd.unique(self.groups)).isin(evaluated_patients(fold_table)).sum())


@dataclass(frozen=True)
class CellSettings:
    """How every configuration of a grid is cross-validated (the same in every cell).

    Args:
        threshold: threshold rule applied to inner out-of-fold predictions.
        inner_splits: inner folds of the threshold and the inner AUC.
        seed: seed of the inner folds.
        estimator_options: keyword arguments of `dlradiomics.models.build_estimator`.
    """

    threshold: ThresholdRule = "youden"
    inner_splits: int = 3
    seed: int = 0
    estimator_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GridCell:
    """Some configurations on one outer fold, in some label worlds.

    Args:
        repeat: outer repeat.
        fold: outer test fold.
        configurations: the configurations, in the order they run (those sharing fits together).
        worlds: label worlds, run one after the other.
        cost: estimated relative cost (for scheduling and the progress estimate).
    """

    repeat: int
    fold: int
    configurations: tuple[ModelConfiguration, ...]
    worlds: tuple[str, ...] = (GRID_WORLD,)
    cost: float = 1.0

    @property
    def n_units(self) -> int:
        """Configuration-folds the cell computes (configurations x worlds)."""
        return len(self.configurations) * len(self.worlds)


@dataclass
class CellOutcome:
    """What one cell produced.

    Args:
        cell: the cell.
        predictions: ``(world, configuration) -> `` the fold's test-patient predictions.
        terms: ``(world, configuration) -> `` what the fold's fitted model reads
            (`dlradiomics.models.model_terms`, with ``repeat, fold``).
        failures: ``(world, configuration) -> `` why the configuration could not run on this fold.
        seconds: ``(world, configuration) -> `` wall seconds spent on it in this cell.
        cache: what sharing saved in this cell.
    """

    cell: GridCell
    predictions: dict[tuple[str, ModelConfiguration], pd.DataFrame] = field(default_factory=dict)
    terms: dict[tuple[str, ModelConfiguration], pd.DataFrame] = field(default_factory=dict)
    failures: dict[tuple[str, ModelConfiguration], str] = field(default_factory=dict)
    seconds: dict[tuple[str, ModelConfiguration], float] = field(default_factory=dict)
    cache: FitCacheStats = field(default_factory=FitCacheStats)


def run_cell(
    cell: GridCell,
    tables: Mapping[TableKey, ModelTable],
    fold_table: pd.DataFrame,
    settings: CellSettings,
) -> CellOutcome:
    """Cross-validate a cell's configurations on its outer fold, sharing identical fits.

    Each configuration is built fresh (`build_estimator`) and fitted on the fold's training rows
    with the threshold chosen by inner CV, exactly as `cross_validate_patients` fits one outer
    fold; a `FitCache` that lives as long as the cell lets the configurations share the fits
    they have in common. A configuration the data cannot support on this fold (a `ValueError`,
    e.g. early fusion of modalities no training patient has together) is recorded as a failure
    with the reason, and the others go on.

    Args:
        cell: the cell.
        tables: the grid's modelling tables.
        fold_table: the outer folds (``patient_id, repeat, fold``).
        settings: how configurations are cross-validated.

    Returns:
        The `CellOutcome`.
    """
    outcome = CellOutcome(cell)
    folds: dict[TableKey, OuterFold | None | ValueError] = {}
    cache = FitCache()
    with sharing_fits(cache), python_string_storage(), warnings.catch_warnings():
        # Early fusion warns, per fold, about patients lacking a modality; the results row's
        # n_patients and note report it once.
        warnings.simplefilter("ignore", MissingBlockWarning)
        # A selector that finds nothing significant in a small fold keeps its best k features (by
        # design, see models.selectors); a warning for each of hundreds of fits buries the progress.
        warnings.simplefilter("ignore", SelectionFallbackWarning)
        for world in cell.worlds:
            for configuration in cell.configurations:
                started = time.perf_counter()
                key = TableKey.of(configuration)
                table = tables[key]
                if key not in folds:
                    folds[key] = _outer_fold(fold_table, table.groups, cell.repeat, cell.fold)
                fold = folds[key]
                try:
                    if isinstance(fold, ValueError):
                        raise fold
                    if fold is not None:
                        fitted = fit_outer_fold(
                            build_estimator(configuration, **settings.estimator_options),
                            table.X,
                            table.labels[world],
                            table.groups,
                            fold,
                            threshold=settings.threshold,
                            inner_splits=settings.inner_splits,
                            unscored="drop",
                            seed=settings.seed,
                        )
                        outcome.predictions[(world, configuration)] = fitted.predictions
                        outcome.terms[(world, configuration)] = fitted.terms
                except ValueError as error:
                    outcome.failures[(world, configuration)] = str(error)
                outcome.seconds[(world, configuration)] = time.perf_counter() - started
    outcome.cache = cache.stats
    for results in (outcome.predictions, outcome.terms):
        for key, frame in results.items():
            results[key] = with_string_storage(frame, DEFAULT_STRINGS)
    return outcome


def _outer_fold(fold_table: pd.DataFrame, groups: np.ndarray, repeat: int, fold: int) -> OuterFold | None | ValueError:
    """The table's rows of one outer fold; None when no test row of the table falls in it."""
    try:
        for candidate in iter_outer_folds(fold_table, groups):
            if candidate.repeat == repeat and candidate.fold == fold:
                return candidate
    except ValueError as error:
        return error
    return None

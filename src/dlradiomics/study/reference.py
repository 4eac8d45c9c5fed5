"""The study's clinical reference operating point (e.g. BI-RADS >= 4), read from the manifest and compared."""

from __future__ import annotations

import pandas as pd

from dlradiomics.cohort.patient_values import patient_values
from dlradiomics.evaluation import ClinicalComparison, GridResult, compare_grid_with_reference
from dlradiomics.study.settings import StudySettings


def reference_scores(settings: StudySettings, table: pd.DataFrame) -> pd.Series | None:
    """The study's reference score per patient (numbers; NaN where a patient has none), or None without one."""
    if settings.reference is None:
        return None
    scores = patient_values(table, settings.reference.column, rule=settings.reference_rule())
    return pd.to_numeric(scores, errors="coerce")


def reference_comparison(settings: StudySettings, grid: GridResult, table: pd.DataFrame) -> ClinicalComparison | None:
    """The reference beside the grid's best model of each role (None without a reference or a completed model)."""
    scores = reference_scores(settings, table)
    if scores is None or grid.completed.empty:
        return None
    return compare_grid_with_reference(grid, scores, positive_at=settings.reference.positive_at,
                                       reference=settings.reference.label(), n_boot=settings.report.bootstrap,
                                       seed=settings.cv.seed)

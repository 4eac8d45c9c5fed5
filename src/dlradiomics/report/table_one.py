"""Table 1: the cohort's characteristics by class, with a test of each variable.

The variables are the cohort's own: images per modality, and every extra manifest column (BI-RADS,
device, age, site, view...) that can be summarised. A column constant within each patient is
counted per patient; one that varies within a patient (e.g. BI-RADS of each lesion) per image,
and the table says which. Categorical variables: counts and column percentages, Pearson's
chi-square test, or Fisher's exact test when an expected count is below 5 (exact for 2x2, Monte
Carlo for larger tables); continuous variables: median (IQR) and the Mann-Whitney U test. Missing
values are counted, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import MonteCarloMethod, chi2_contingency, fisher_exact, mannwhitneyu

# Columns every cohort table carries that are not characteristics of patients.
STRUCTURAL_COLUMNS = frozenset({"roi_id", "patient_id", "modality", "image", "mask", "label", "mask_label", "slice",
                                "fold"})
# Fold or split assignments (BUS-BRA's fold5/fold10, a split column): study design, not characteristics.
FOLD_COLUMN = re.compile(r"^(fold|split|repeat)[\w-]*$", re.IGNORECASE)
MAX_LEVELS = 12
CLASS_NAMES = {0: "benign", 1: "malignant"}
TABLE_ONE_COLUMNS = ["variable", "level", "unit", "benign", "malignant", "test", "p"]
MONTE_CARLO_RESAMPLES = 9999


@dataclass(frozen=True)
class TableOneVariable:
    """One variable of Table 1.

    Args:
        name: the cohort column.
        kind: ``"categorical"`` or ``"continuous"``.
        unit: ``"patients"`` (constant within each patient) or ``"images"``.
    """

    name: str
    kind: str
    unit: str


def table_one_variables(table: pd.DataFrame, *, exclude: Iterable[str] = (),
                        max_levels: int = MAX_LEVELS) -> tuple[list[TableOneVariable], list[str]]:
    """The columns Table 1 can summarise, and a note for each column it leaves out.

    Args:
        table: cohort rows (one per image) with `patient_id`, `label` and extra columns.
        exclude: columns to leave out (e.g. the study's fold column).
        max_levels: a text column with more distinct values is free text, not a category.

    Returns:
        `(variables, notes)`; notes say why a column was left out, e.g. ``"source (40 distinct
        values: free text)"``.
    """
    excluded = set(exclude)
    variables, notes = [], []
    n_patients = table["patient_id"].nunique()
    for column in table.columns:
        if column in STRUCTURAL_COLUMNS or column in excluded:
            continue
        if FOLD_COLUMN.match(str(column)):
            notes.append(f"{column} (a fold or split assignment: study design, not a characteristic)")
            continue
        values = table[column]
        present = values.dropna()
        if present.astype(str).str.strip().eq("").all():
            continue  # an optional column no row fills (view, group of a cohort without them)
        per_patient = table.assign(_value=values).dropna(subset=["_value"]).groupby("patient_id")["_value"].nunique()
        unit = "patients" if (per_patient <= 1).all() else "images"
        numeric = pd.to_numeric(present, errors="coerce")
        levels = present.astype(str).nunique()
        if unit == "patients" and levels == n_patients and levels > max_levels:
            notes.append(f"{column} (a different value for every patient: an identifier)")
        elif numeric.notna().all() and levels > max_levels:
            variables.append(TableOneVariable(column, "continuous", unit))
        elif levels <= max_levels:
            variables.append(TableOneVariable(column, "categorical", unit))
        else:
            notes.append(f"{column} ({levels} distinct values: free text)")
    return variables, notes


def table_one(table: pd.DataFrame, variables: Iterable[TableOneVariable] | None = None, *,
              seed: int = 0) -> pd.DataFrame:
    """Table 1 of a cohort: counts by class, then each variable with its test.

    Args:
        table: cohort rows (one per image): `patient_id`, `modality`, `label` (0/1) and the
            variables' columns.
        variables: what to summarise (default: `table_one_variables(table)`).
        seed: seed of Monte Carlo Fisher tests.

    Returns:
        Rows of `TABLE_ONE_COLUMNS`; `benign`/`malignant` cells are formatted counts
        (``"12 (30.0%)"``) or ``"median (Q1-Q3)"``; `p` is formatted (``"0.012"``, ``"<0.001"``).
    """
    if variables is None:
        variables = table_one_variables(table)[0]
    patients = table.groupby("patient_id").agg(label=("label", "first"))
    rows = [_count_row("patients", "", "patients", patients["label"]),
            _count_row("images", "", "images", table["label"])]
    for modality, images in table.groupby("modality", sort=True):
        rows.append(_count_row("images per modality", str(modality), "images", images["label"],
                               totals=table["label"].value_counts()))
    for variable in variables:
        frame = _unit_frame(table, variable)
        if variable.kind == "continuous":
            rows.extend(_continuous_rows(variable, frame))
        else:
            rows.extend(_categorical_rows(variable, frame, seed))
    return pd.DataFrame(rows, columns=TABLE_ONE_COLUMNS)


def _unit_frame(table: pd.DataFrame, variable: TableOneVariable) -> pd.DataFrame:
    """The variable's value and label per patient (first non-missing value) or per image."""
    frame = table[["patient_id", "label", variable.name]].rename(columns={variable.name: "value"})
    if variable.unit == "patients":
        frame = frame.groupby("patient_id").agg(label=("label", "first"), value=("value", "first"))
    return frame


def _percent(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.1f}%)" if total else f"{count}"


def _count_row(variable: str, level: str, unit: str, labels: pd.Series, totals: pd.Series | None = None) -> dict:
    counts = labels.value_counts()
    cells = {}
    for label, name in CLASS_NAMES.items():
        count = int(counts.get(label, 0))
        cells[name] = _percent(count, int(totals.get(label, 0))) if totals is not None else str(count)
    return {"variable": variable, "level": level, "unit": unit, **cells, "test": "", "p": ""}


def _categorical_rows(variable: TableOneVariable, frame: pd.DataFrame, seed: int) -> list[dict]:
    values = frame["value"].map(lambda value: value if pd.isna(value) else _level_name(value))
    known = frame.assign(value=values).dropna(subset=["value"])
    contingency = pd.crosstab(known["value"], known["label"]).reindex(columns=list(CLASS_NAMES), fill_value=0)
    contingency = contingency.reindex(sorted(contingency.index, key=_level_order))
    test, p = _categorical_test(contingency.to_numpy(), seed)
    totals = frame["label"].value_counts()
    rows = [{"variable": variable.name, "level": "", "unit": variable.unit, "benign": "", "malignant": "",
             "test": test, "p": _format_p(p)}]
    for level, counts in contingency.iterrows():
        rows.append({"variable": "", "level": str(level), "unit": variable.unit,
                     **{name: _percent(int(counts[label]), int(totals.get(label, 0)))
                        for label, name in CLASS_NAMES.items()}, "test": "", "p": ""})
    rows.extend(_missing_row(variable, frame))
    return rows


def _continuous_rows(variable: TableOneVariable, frame: pd.DataFrame) -> list[dict]:
    values = pd.to_numeric(frame["value"], errors="coerce")
    cells, groups = {}, []
    for label, name in CLASS_NAMES.items():
        group = values[frame["label"] == label].dropna()
        groups.append(group)
        cells[name] = (f"{group.median():.3g} ({group.quantile(0.25):.3g}-{group.quantile(0.75):.3g})"
                       if len(group) else "")
    p = mannwhitneyu(*groups).pvalue if all(len(group) for group in groups) else np.nan
    rows = [{"variable": variable.name, "level": "median (IQR)", "unit": variable.unit, **cells,
             "test": "Mann-Whitney U", "p": _format_p(p)}]
    rows.extend(_missing_row(variable, frame))
    return rows


def _missing_row(variable: TableOneVariable, frame: pd.DataFrame) -> list[dict]:
    missing = frame["value"].isna() | frame["value"].astype(str).str.strip().eq("")
    if not missing.any():
        return []
    totals = frame["label"].value_counts()
    counts = frame.loc[missing, "label"].value_counts()
    return [{"variable": "", "level": "(missing)", "unit": variable.unit,
             **{name: _percent(int(counts.get(label, 0)), int(totals.get(label, 0)))
                for label, name in CLASS_NAMES.items()}, "test": "", "p": ""}]


def _categorical_test(contingency: np.ndarray, seed: int) -> tuple[str, float]:
    """Pearson's chi-square, or Fisher's exact test when an expected count is below 5."""
    contingency = contingency[contingency.sum(axis=1) > 0]
    if contingency.shape[0] < 2 or (contingency.sum(axis=0) == 0).any():
        return "", np.nan
    chi_square = chi2_contingency(contingency, correction=False)
    if (chi_square.expected_freq >= 5).all():
        return "chi-square", float(chi_square.pvalue)
    if contingency.shape == (2, 2):
        return "Fisher exact", float(fisher_exact(contingency).pvalue)
    method = MonteCarloMethod(n_resamples=MONTE_CARLO_RESAMPLES, rng=np.random.default_rng(seed))
    return "Fisher exact (Monte Carlo)", float(fisher_exact(contingency, method=method).pvalue)


def _level_name(value) -> str:
    """A level's label: whole numbers without a trailing '.0' (BI-RADS 4, not 4.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _level_order(level: str) -> tuple[int, float | str]:
    try:
        return 0, float(level)
    except ValueError:
        return 1, level


def _format_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"

"""One value per patient from a manifest column (a clinical variable, a reference score, a site).

A manifest has one row per image, so a per-patient variable appears once per image of the
patient. By default the images must agree (blank cells aside); a study may instead declare how to
combine differing values (BI-RADS of a patient's two lesions: the most suspicious, ``max``).
Nothing is combined silently: a disagreement without a declared rule is an error naming the
patient and the values.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

PerPatientRule = Literal["same", "max", "min", "mean", "first"]
PER_PATIENT_RULES: tuple[str, ...] = ("same", "max", "min", "mean", "first")
NUMERIC_RULES = ("max", "min", "mean")


class PatientValueError(ValueError):
    """A per-patient column that cannot give one value per patient; names the patient, column and values."""


def is_blank(value: object) -> bool:
    """Whether a manifest cell is empty (None, NaN, NA or only spaces)."""
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or \
        (isinstance(value, str) and not value.strip())


def value_text(value: object) -> str:
    """A value as the text a category is known by (``4`` for 4 and 4.0, names stripped)."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format(float(value), "g")
    return str(value).strip()


def patient_values(table: pd.DataFrame, column: str, *, rule: PerPatientRule = "same",
                   patient_column: str = "patient_id") -> pd.Series:
    """The value of a column for each patient of a cohort table.

    Args:
        table: the cohort's rows (one per image), with ``patient_column`` and ``column``.
        column: the manifest column.
        rule: how the values of a patient's images become one: ``same`` (they must agree),
            ``max``, ``min`` or ``mean`` (numbers only), ``first`` (the first row's).
        patient_column: the column holding the patient id.

    Returns:
        One value per patient (index: patient id as text, in sorted order); NaN or None where the
        patient's rows are all blank. Numbers stay numbers, text stays stripped text.

    Raises:
        PatientValueError: the column is absent, a numeric rule meets text, or (rule ``same``) a
            patient's images disagree; the message names the first such patient and its values.
    """
    if rule not in PER_PATIENT_RULES:
        raise ValueError(f"unknown per-patient rule {rule!r}; use one of {PER_PATIENT_RULES}")
    if column not in table.columns:
        raise PatientValueError(f"the manifest has no column {column!r} (columns: "
                                f"{', '.join(map(str, table.columns))})")
    rows = pd.DataFrame({"patient": table[patient_column].astype(str).to_numpy(),
                         "value": table[column].astype(object).to_numpy()})
    rows = rows[~rows["value"].map(is_blank)]
    patients = sorted(set(table[patient_column].astype(str)))
    if rule in NUMERIC_RULES:
        numbers = pd.to_numeric(rows["value"], errors="coerce")
        if numbers.isna().any():
            bad = rows[numbers.isna()].iloc[0]
            raise PatientValueError(f"patient {bad['patient']}: column {column!r} holds {bad['value']!r}, not a "
                                    f"number, so the rule {rule!r} cannot combine it")
        combined = numbers.groupby(rows["patient"]).agg(rule)
        return combined.reindex(patients).rename(column)
    if rule == "same":
        texts = rows["value"].map(value_text)
        distinct = texts.groupby(rows["patient"]).unique()
        differing = distinct[distinct.map(len) > 1]
        if len(differing):
            patient = differing.index[0]
            raise PatientValueError(
                f"patient {patient}: column {column!r} differs between the patient's images "
                f"({', '.join(differing.iloc[0])}); it must hold one value per patient"
                + (f" ({len(differing)} patients differ)" if len(differing) > 1 else ""))
    first = rows.groupby("patient", sort=True)["value"].first()
    return first.reindex(patients).rename(column)

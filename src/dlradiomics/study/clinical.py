"""Manifest columns as clinical variables: the clinical feature table, for training and for new patients.

A study names its clinical columns (`ClinicalSettings`); this module turns a cohort's rows into
the image-level clinical feature table (one value per patient, on each of the patient's image
rows; see `dlradiomics.models.clinical`), and records how it did so (`ClinicalSpec`: the columns,
each categorical column's categories in code order, the per-patient rules) so that a bundle
reads new patients' manifests the same way.

Training patients must give clean values (a text in a numeric column stops the study, naming the
patient). New patients are predicted whatever they bring: a missing value is left to the model,
which imputes it inside (and was trained with the missing-value indicator); an unknown category or
a value that is not a number is treated as missing; each such patient gets a warning saying so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dlradiomics.cohort.patient_values import PatientValueError, is_blank, patient_values, value_text
from dlradiomics.models import CLINICAL_KIND, ClinicalEncodingStep
from dlradiomics.schema import META_COLUMNS


def _category_order(texts: Sequence[str]) -> tuple[str, ...]:
    """Categories sorted as numbers when they all are (BI-RADS 2 < 3 < 10), else as text."""
    distinct = sorted(set(texts))
    try:
        return tuple(sorted(distinct, key=float))
    except ValueError:
        return tuple(distinct)


@dataclass(frozen=True)
class ClinicalSpec:
    """How a study reads its clinical variables, as a bundle records it.

    Args:
        columns: the clinical columns, in order.
        categories: each categorical column with its categories in code order.
        per_patient: each column's per-patient rule (`dlradiomics.cohort.patient_values`).
    """

    columns: tuple[str, ...]
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()
    per_patient: tuple[tuple[str, str], ...] = ()

    @property
    def categorical(self) -> dict[str, tuple[str, ...]]:
        """Categorical columns and their categories."""
        return dict(self.categories)

    def rule_for(self, column: str) -> str:
        """The per-patient rule of a column."""
        return dict(self.per_patient).get(column, "same")

    def encoding_step(self) -> ClinicalEncodingStep:
        """The step that prepares the clinical block inside each training fold."""
        return ClinicalEncodingStep(categories=self.categories)

    def record(self) -> dict[str, Any]:
        """The spec as JSON-ready values (for `bundle.json`)."""
        return {"columns": list(self.columns),
                "categorical": {name: list(values) for name, values in self.categories},
                "per_patient": dict(self.per_patient)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ClinicalSpec:
        """The spec a bundle recorded (`record`)."""
        return cls(columns=tuple(record["columns"]),
                   categories=tuple((name, tuple(values)) for name, values in record.get("categorical", {}).items()),
                   per_patient=tuple(sorted(record.get("per_patient", {}).items())))

    @classmethod
    def learn(cls, settings: Any, rows: pd.DataFrame) -> ClinicalSpec:
        """The spec of a study: its settings, with each categorical column's categories read from its patients.

        The list of categories is label-free (it says which values exist, not what they mean), and
        only names the one-hot columns; which categories a model uses is learnt inside each
        training fold.

        Args:
            settings: the study's `ClinicalSettings`.
            rows: the study's cohort rows.

        Raises:
            PatientValueError: a column is absent, or a patient's values disagree without a rule.
        """
        per_patient = tuple(sorted((column, settings.rule_for(column)) for column in settings.columns))
        rules = dict(per_patient)
        categories = []
        for column in settings.columns:
            if column in settings.categorical:
                values = patient_values(rows, column, rule=rules[column])
                categories.append((column, _category_order([value_text(v) for v in values if not is_blank(v)])))
        return cls(columns=tuple(settings.columns), categories=tuple(categories), per_patient=per_patient)


@dataclass
class ClinicalTable:
    """The clinical feature table of some patients, and what was done to their values.

    Args:
        table: image-level: `META_COLUMNS`, then one float column per clinical variable.
        warnings: per patient, values missing, unknown or unreadable (left to the model to impute).
        reasons: per patient, why no clinical values could be read (the patient cannot be predicted).
    """

    table: pd.DataFrame
    warnings: dict[str, list[str]] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)


def clinical_table(rows: pd.DataFrame, spec: ClinicalSpec, *, training: bool) -> ClinicalTable:
    """The image-level clinical feature table of a cohort's rows.

    Args:
        rows: cohort rows (`META_COLUMNS` and the clinical columns).
        spec: the clinical spec (`ClinicalSpec.learn` for a study, `from_record` for a bundle).
        training: training patients must give clean values: a disagreement without a rule, or a
            text in a numeric column, raises. Otherwise (new patients) such a patient gets a
            reason or a warning instead.

    Returns:
        The table with the warnings and reasons per patient.

    Raises:
        PatientValueError: (training only) naming the patient, the column and the values.
    """
    warnings: dict[str, list[str]] = {}
    reasons: dict[str, list[str]] = {}
    per_patient: dict[str, pd.Series] = {}
    patients = sorted(set(rows["patient_id"].astype(str)))
    for column in spec.columns:
        if column not in rows.columns:
            if training:
                raise PatientValueError(f"the manifest has no column {column!r} (a clinical variable of the study)")
            for patient in patients:
                warnings.setdefault(patient, []).append(f"{column}: no such column in the manifest, filled in by "
                                                        "the model")
            per_patient[column] = pd.Series(np.nan, index=patients)
            continue
        per_patient[column] = _values_of_column(rows, column, spec, training, warnings, reasons)
    values = pd.DataFrame(per_patient, index=pd.Index(patients, name="patient_id"))
    table = rows[META_COLUMNS].copy()
    table["patient_id"] = table["patient_id"].astype(str)
    table = table.join(values, on="patient_id")
    for column in spec.columns:
        table[column] = table[column].astype(np.float64)
    return ClinicalTable(table=table.reset_index(drop=True), warnings=warnings, reasons=reasons)


def _values_of_column(rows: pd.DataFrame, column: str, spec: ClinicalSpec, training: bool,
                      warnings: dict[str, list[str]], reasons: dict[str, list[str]]) -> pd.Series:
    rule = spec.rule_for(column)
    if training:
        raw = patient_values(rows, column, rule=rule)
    else:
        # New patients one at a time: one patient's disagreeing images must not stop the others.
        raw_values = {}
        for patient, patient_rows in rows.groupby(rows["patient_id"].astype(str), sort=True):
            try:
                raw_values[patient] = patient_values(patient_rows, column, rule=rule).iloc[0]
            except PatientValueError as error:
                reasons.setdefault(patient, []).append(str(error))
                raw_values[patient] = np.nan
        raw = pd.Series(raw_values, dtype=object)
    categories = spec.categorical.get(column)
    coded = {}
    for patient, value in raw.items():
        patient = str(patient)
        if is_blank(value):
            if patient not in reasons:
                warnings.setdefault(patient, []).append(f"{column}: missing, filled in by the model (and flagged "
                                                        "to it as missing)")
            coded[patient] = np.nan
        elif categories is not None:
            text = value_text(value)
            if text in categories:
                coded[patient] = float(categories.index(text))
            else:
                warnings.setdefault(patient, []).append(
                    f"{column}: {text!r} is not among the training categories ({', '.join(categories)}); treated "
                    "as missing")
                coded[patient] = np.nan
        else:
            number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
            if pd.isna(number):
                if training:
                    raise PatientValueError(f"patient {patient}: column {column!r} holds {value!r}, not a number; "
                                            "list the column under clinical.categorical if it is a category")
                warnings.setdefault(patient, []).append(f"{column}: {value!r} is not a number; treated as missing")
            coded[patient] = float(number)
    return pd.Series(coded, dtype=np.float64)


def add_clinical_table(tables: dict[str, pd.DataFrame], rows: pd.DataFrame, spec: ClinicalSpec) -> dict[str, pd.DataFrame]:
    """The feature tables with the clinical table of the images that have imaging features.

    Clinical values join the images the imaging tables have (every configuration then covers the
    same patients); with no imaging table (a clinical-only study) every row is used.

    Args:
        tables: imaging feature tables by kind.
        rows: the study's cohort rows.
        spec: the study's clinical spec.

    Returns:
        A new mapping with the ``clinical`` table added.
    """
    imaged = set().union(*(set(frame["roi_id"]) for frame in tables.values())) if tables else None
    used = rows if imaged is None else rows[rows["roi_id"].isin(imaged)]
    return {**tables, CLINICAL_KIND: clinical_table(used, spec, training=True).table}

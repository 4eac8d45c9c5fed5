"""Check a raw manifest table row by row and split it into good rows and rejected rows.

Every problem is collected before anything is decided, so a user fixes a manifest in one pass
rather than one error per run.
"""

from __future__ import annotations

import math
import os
import stat
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlradiomics.cohort.columns import (
    COLUMN_ALIASES,
    FOLD_COLUMN,
    KNOWN_COLUMNS,
    OPTIONAL_INTEGER_COLUMNS,
    OPTIONAL_TEXT_COLUMNS,
    PARSE_PROBLEM_COLUMN,
    PATH_COLUMNS,
    REQUIRED_COLUMNS,
    TABLE_COLUMNS,
)
from dlradiomics.cohort.labels import ACCEPTED_LABELS, LABEL_NAMES, parse_label
from dlradiomics.cohort.modalities import canonical_modality, modality_name_problem
from dlradiomics.cohort.problems import ManifestProblem
from dlradiomics.io import ImageReadError, file_stem, folder_holds_dicom, load_roi

# Given rows (dicts with image, mask, mask_label, slice): what reading each raises (None where it reads).
ReadErrors = Callable[[list[dict]], list[ImageReadError | None]]


@dataclass
class ValidatedRows:
    """The outcome of validation: good rows (normalised), rejected rows (as given) and problems.

    ``rows`` holds the 1-based manifest row of each good row, so that a row left out later (another
    modality, failed features) can still be named by its row number.
    """

    table: pd.DataFrame
    rejected: pd.DataFrame
    problems: list[ManifestProblem]
    rows: list[int]


def text_value(value: Any) -> str:
    """A cell as stripped text; empty for missing values (None, NaN, pandas NA)."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def resolve_path(value: str, root: Path) -> str:
    """Absolute path of a manifest path; relative ones are taken from the manifest's folder."""
    # os.path, not pathlib: a manifest has thousands of paths and this runs on every command
    return os.path.normpath(os.path.join(root, os.path.expanduser(value)))


def normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip column names, lower-case the known ones and apply aliases (``site`` -> ``group``)."""
    renamed = {}
    for column in frame.columns:
        name = str(column).strip()
        lowered = name.lower()
        if lowered in KNOWN_COLUMNS:
            name = lowered
        elif lowered in COLUMN_ALIASES and COLUMN_ALIASES[lowered] not in {str(c).strip().lower() for c in frame.columns}:
            name = COLUMN_ALIASES[lowered]
        renamed[column] = name
    return frame.rename(columns=renamed)


class _ProblemLog:
    """Problems collected per row (0-based index), reported with 1-based row numbers."""

    def __init__(self, patients: list[str]):
        self.patients = patients
        self.by_row: dict[int, list[ManifestProblem]] = defaultdict(list)

    def add(self, index: int, column: str, message: str) -> None:
        self.by_row[index].append(ManifestProblem(index + 1, self.patients[index] or None, column, message))

    def bad_rows(self) -> list[int]:
        return sorted(self.by_row)


def validate_rows(frame: pd.DataFrame, root: Path, *, check_images: bool = False,
                  read_errors: ReadErrors | None = None) -> ValidatedRows:
    """Validate a manifest table.

    Args:
        frame: the manifest as read (one row per image).
        root: folder that relative paths are resolved against.
        check_images: also read every good row's image and mask (slow: it opens each file).
        read_errors: how rows are read when ``check_images`` is set: given row dicts (``image``,
            ``mask``, ``mask_label``, ``slice``), the `ImageReadError` that `load_roi` raises for each
            (None where it reads); default: `load_roi` itself. `dlradiomics.cohort.qa.QaCache.read_errors`
            answers from QA findings cached by the files' content.

    Returns:
        Good rows with absolute paths, integer labels and ``roi_id``; rejected rows with a
        ``problems`` column; the list of every problem found.
    """
    frame = normalise_columns(frame.reset_index(drop=True))
    parse_problems = frame.pop(PARSE_PROBLEM_COLUMN) if PARSE_PROBLEM_COLUMN in frame else None
    file_problems = column_problems(frame)
    if file_problems:
        rejected = frame.assign(problems="; ".join(f"{p.column}: {p.message}" for p in file_problems))
        return ValidatedRows(_empty_table(), rejected, file_problems, [])

    patients = [text_value(v) for v in frame["patient_id"]]
    log = _ProblemLog(patients)
    parse_problems = list(parse_problems) if parse_problems is not None else [""] * len(frame)
    for index, problem in enumerate(parse_problems):
        if problem:
            log.add(index, "", problem)
    # Modality names are free; one canonical spelling makes "us", " Us " and "US" one modality.
    modalities = [text_value(v) for v in frame["modality"]]
    clean = pd.DataFrame({"patient_id": patients, "modality": [canonical_modality(v) for v in modalities]})
    for index, value in enumerate(patients):
        if not value:
            log.add(index, "patient_id", "missing value")
    for index, value in enumerate(modalities):
        problem = modality_name_problem(value)
        if problem:
            log.add(index, "modality", problem)
    for column in PATH_COLUMNS:
        clean[column] = _resolved_paths(frame[column], column, root, log)
    clean["label"] = _parsed_labels(frame["label"], log)
    for column in OPTIONAL_TEXT_COLUMNS:
        clean[column] = [text_value(v) or None for v in frame[column]] if column in frame else None
    for column in OPTIONAL_INTEGER_COLUMNS:
        raw = frame[column] if column in frame else [None] * len(frame)
        clean[column] = _parsed_integers(raw, column, log)

    _report_duplicates(clean, log)
    _report_label_conflicts(clean, log)
    if check_images:
        _report_unreadable(clean, log, read_errors or _load_errors)
    for index, problem in enumerate(parse_problems):
        if problem:
            # The cells of a row that did not split into the header's columns sit under the wrong
            # names: what validation made of them is noise; the one real problem is the split.
            log.by_row[index] = [ManifestProblem(index + 1, patients[index] or None, "", problem)]
    return _split_rows(frame, clean, log)


def column_problems(frame: pd.DataFrame) -> list[ManifestProblem]:
    """Problems of the header: no known column at all (no header line?), a required one missing, one repeated."""
    if not any(column in frame.columns for column in REQUIRED_COLUMNS):
        header = " ".join(str(column) for column in frame.columns)
        separator = next((name for mark, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'"))
                          if mark in header), None)
        if separator and all(column in header.lower() for column in REQUIRED_COLUMNS):
            return [ManifestProblem(None, None, "", f"the columns are separated by {separator}; a manifest CSV "
                                    "separates them by commas (save it as 'CSV UTF-8 (comma delimited)')")]
        found = ", ".join(repr(str(column)) for column in list(frame.columns)[:6])
        return [ManifestProblem(None, None, "", f"no column is named {', '.join(REQUIRED_COLUMNS)}: the first line "
                                f"must be the header naming the columns (it reads {found}); add the header line "
                                f"{','.join(REQUIRED_COLUMNS)}")]
    problems = [
        ManifestProblem(None, None, column, "required column is missing")
        for column in REQUIRED_COLUMNS
        if column not in frame.columns
    ]
    repeated = sorted({c for c in frame.columns[frame.columns.duplicated()] if c in KNOWN_COLUMNS})
    problems += [ManifestProblem(None, None, column, "column appears more than once") for column in repeated]
    return problems


def _resolved_paths(values: pd.Series, column: str, root: Path, log: _ProblemLog) -> list[str]:
    resolved = []
    for index, raw in enumerate(values):
        value = text_value(raw)
        if not value:
            log.add(index, column, "missing value")
            resolved.append("")
            continue
        path = resolve_path(value, root)
        try:
            mode = os.stat(path).st_mode  # one stat per path tells folder, file, other or missing
        except OSError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            # A folder is one DICOM series (a volume); anything else in a path column must be a file.
            try:
                holds_dicom = folder_holds_dicom(path)
            except OSError as error:
                log.add(index, column, f"cannot read the {column} folder {path}: {error.strerror}")
                holds_dicom = True
            if not holds_dicom:
                log.add(index, column, f"{column} is a folder without DICOM files: {path} (a folder {column} must "
                        "hold the slices of one DICOM series)")
        elif mode is not None and not stat.S_ISREG(mode):
            log.add(index, column, f"{column} is not a regular file (a device, pipe or socket): {path}")
        elif mode is None:
            log.add(index, column, f"{column} file not found: {path}")
        resolved.append(path)
    return resolved


def _parsed_labels(values: pd.Series, log: _ProblemLog) -> list[int | None]:
    labels = []
    for index, raw in enumerate(values):
        label = parse_label(raw)
        if label is None:
            shown = text_value(raw)
            log.add(index, "label", f"unknown label {shown!r}; use {ACCEPTED_LABELS}" if shown else "missing value")
        labels.append(label)
    return labels


def _parsed_integers(values, column: str, log: _ProblemLog):
    numbers = []
    for index, raw in enumerate(values):
        value = text_value(raw)
        number = _non_negative_int(value) if value else None
        if value and number is None:
            log.add(index, column, f"must be a whole number >= 0, got {value!r}")
        numbers.append(number)
    return pd.array(numbers, dtype="Int64")


def _split_rows(frame: pd.DataFrame, clean: pd.DataFrame, log: _ProblemLog) -> ValidatedRows:
    bad = log.bad_rows()
    good = ~np.isin(np.arange(len(frame)), bad)
    table = clean.loc[good].copy()
    table["label"] = table["label"].astype("int64")
    # fold first, then the extras in the manifest's own order; roi_id is always derived afresh.
    extras = [FOLD_COLUMN] if FOLD_COLUMN in frame else []
    extras += [c for c in frame.columns if c not in KNOWN_COLUMNS and c != "roi_id"]
    for column in extras:
        table[column] = _maybe_numeric(frame.loc[good, column])
    table.insert(0, "roi_id", pd.Series(_roi_ids(table), index=table.index, dtype=object))

    rejected = frame.loc[~good].copy()
    rejected.insert(0, "row", [index + 1 for index in bad])
    rejected["problems"] = ["; ".join(f"{p.column}: {p.message}" for p in log.by_row[index]) for index in bad]
    problems = [problem for index in bad for problem in log.by_row[index]]
    rows = [int(index) + 1 for index in np.flatnonzero(good)]
    return ValidatedRows(table.reset_index(drop=True), rejected.reset_index(drop=True), problems, rows)


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="int64" if column == "label" else object) for column in TABLE_COLUMNS})


def _non_negative_int(value: str) -> int | None:
    try:
        number = float(value)
    except ValueError:
        return None
    if not number.is_integer() or number < 0:
        return None
    return int(number)


def _maybe_numeric(column: pd.Series) -> pd.Series:
    """Extra columns stay as written, but all-number text columns become numbers (``birads`` 4, not "4")."""
    if column.dtype != object and not pd.api.types.is_string_dtype(column):
        return column
    blanks = column.map(lambda v: text_value(v) == "")
    try:
        numbers = pd.to_numeric(column.where(~blanks, None))
    except (ValueError, TypeError):
        return column
    if numbers.notna().any() and (numbers.dropna() % 1 == 0).all():
        return numbers.astype("Int64")
    return numbers


def _report_duplicates(clean: pd.DataFrame, log: _ProblemLog) -> None:
    key_columns = ["patient_id", "modality", "image", "mask", "mask_label", "slice"]
    first_seen: dict[tuple, int] = {}
    for index, key in enumerate(clean[key_columns].astype(object).itertuples(index=False, name=None)):
        if not key[0] or not key[2]:
            continue  # a row without patient or image is reported for that already
        if key in first_seen:
            log.add(index, "image", f"duplicate of row {first_seen[key] + 1} (same patient, modality, image and mask)")
        else:
            first_seen[key] = index


def _report_label_conflicts(clean: pd.DataFrame, log: _ProblemLog) -> None:
    rows_by_patient_label: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, (patient, label) in enumerate(zip(clean["patient_id"], clean["label"])):
        if patient and label is not None:
            rows_by_patient_label[patient][label].append(index)
    for patient, by_label in rows_by_patient_label.items():
        if len(by_label) < 2:
            continue
        summary = ", ".join(
            f"{LABEL_NAMES[label]} (rows {', '.join(str(i + 1) for i in rows)})"
            for label, rows in sorted(by_label.items())
        )
        for rows in by_label.values():
            for index in rows:
                log.add(index, "label", f"patient has conflicting labels: {summary}")


def _report_unreadable(clean: pd.DataFrame, log: _ProblemLog, read_errors: ReadErrors) -> None:
    indices = [index for index in range(len(clean)) if index not in log.by_row]
    rows = clean.iloc[indices].to_dict("records")
    for index, row, error in zip(indices, rows, read_errors(rows)):
        if error is not None:
            column = "mask" if os.path.normpath(error.path) == os.path.normpath(row["mask"]) else "image"
            log.add(index, column, str(error))


def _load_errors(rows: list[dict]) -> list[ImageReadError | None]:
    """What `load_roi` raises for each row (None where it reads)."""
    errors: list[ImageReadError | None] = []
    for row in rows:
        try:
            load_roi(
                row["image"],
                row["mask"],
                mask_label=None if pd.isna(row["mask_label"]) else int(row["mask_label"]),
                slice_index=None if pd.isna(row["slice"]) else int(row["slice"]),
            )
            errors.append(None)
        except ImageReadError as error:
            errors.append(error)
    return errors


def _roi_ids(table: pd.DataFrame) -> list[str]:
    seen: dict[str, int] = defaultdict(int)
    ids = []
    for patient, modality, image in zip(table["patient_id"], table["modality"], table["image"]):
        base = f"{patient}/{modality}/{file_stem(image)}"
        seen[base] += 1
        ids.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return ids

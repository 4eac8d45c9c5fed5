"""Every manifest row a study does not use, with the reason: nothing is dropped without a word.

A row can be left out because the manifest checks rejected it (a missing file, an unknown
label ...), because its modality is not one the study names, because its view is not one the study
selects for its modality (``cohort.views``), or because its features could not be computed. :func:`unused_rows` lists the first two kinds from the cohort, :func:`with_feature_failures`
adds the third; the run prints the count and the first rows on the terminal and the report shows
the whole table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dlradiomics.cohort.views import view_reason

UNUSED_COLUMNS = ["row", "roi_id", "patient_id", "modality", "stage", "reason"]


def unused_rows(cohort: Any, study_modalities: Sequence[str],
                views: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """The manifest rows rejected by its checks and the good rows of modalities or views the study leaves out.

    Args:
        cohort: the validated ``dlradiomics.cohort.Cohort`` (all modalities).
        study_modalities: the study's modalities (canonical names).
        views: the study's view filter (canonical modality -> views kept); None keeps every view.

    Returns:
        One row per unused manifest row (``UNUSED_COLUMNS``), in manifest order.
    """
    from dlradiomics.cohort.modalities import canonical_modality

    records = []
    rejected = cohort.rejected
    if len(rejected) and "row" in rejected:
        for _, row in rejected.iterrows():
            records.append({"row": int(row["row"]), "roi_id": None,
                            "patient_id": _text(row.get("patient_id")),
                            "modality": canonical_modality(row.get("modality", "")) or None,
                            "stage": "manifest", "reason": str(row.get("problems", ""))})
    table = cohort.table
    rows = list(cohort.source_rows) if len(cohort.source_rows) == len(table) else [None] * len(table)
    wanted = set(study_modalities)
    listed = ", ".join(study_modalities)
    # Plain dicts: a pandas row per manifest row cost a second on BUS-BRA's 1,875 rows.
    for row_number, row in zip(rows, table.to_dict("records")):
        if row["modality"] not in wanted:
            records.append({"row": row_number, "roi_id": row["roi_id"], "patient_id": row["patient_id"],
                            "modality": row["modality"], "stage": "modality",
                            "reason": f"modality {row['modality']} is not among the study's modalities ({listed})"})
            continue
        reason = view_reason(row["modality"], row.get("view"), views or {})
        if reason is not None:
            records.append({"row": row_number, "roi_id": row["roi_id"], "patient_id": row["patient_id"],
                            "modality": row["modality"], "stage": "view", "reason": reason})
    frame = pd.DataFrame(records, columns=UNUSED_COLUMNS)
    return frame.sort_values("row", kind="stable", na_position="last").reset_index(drop=True)


def manifest_row_of(cohort: Any) -> dict[str, int]:
    """The manifest row of each good row, by ``roi_id``."""
    if len(cohort.source_rows) != len(cohort.table):
        return {}
    return dict(zip(cohort.table["roi_id"], cohort.source_rows))


def with_feature_failures(unused: pd.DataFrame, failures: pd.DataFrame, table: pd.DataFrame,
                          row_of: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Add the study rows whose features could not be computed.

    Args:
        unused: what :func:`unused_rows` gave.
        failures: the feature failures (``roi_id, patient_id, stage, error``).
        table: the study's cohort rows (``roi_id``, ``modality``), for each failure's modality.
        row_of: the manifest row of each ``roi_id`` (:func:`manifest_row_of`); rows left blank without.
    """
    if failures is None or failures.empty:
        return unused
    modality_of = dict(zip(table["roi_id"], table["modality"]))
    row_of = dict(row_of or {})
    records = [{"row": row_of.get(failure.roi_id), "roi_id": failure.roi_id, "patient_id": failure.patient_id,
                "modality": modality_of.get(failure.roi_id), "stage": f"features ({failure.stage})",
                "reason": str(failure.error)} for failure in failures.itertuples()]
    added = pd.DataFrame(records, columns=UNUSED_COLUMNS)
    return pd.concat([unused, added], ignore_index=True) if len(unused) else added


def unused_summary(unused: pd.DataFrame, *, total_rows: int, shown: int = 50) -> list[str]:
    """Lines for the terminal: how many rows were not used and why, naming them.

    Rows of a modality the study does not use are named by modality with their row numbers (one
    line each); the others one by one, up to ``shown``, then a pointer to the full list.

    Args:
        unused: the unused rows.
        total_rows: rows in the manifest.
        shown: how many rows to name one by one.
    """
    if unused.empty:
        return [f"every one of the {total_rows} manifest rows was used"]
    stages = unused["stage"].astype(str).str.split(" ", n=1).str[0]
    by_stage = ", ".join(f"{count} by {stage}" for stage, count in stages.value_counts().items())
    lines = [f"{len(unused)} of {total_rows} manifest rows not used ({by_stage}):"]
    other = unused[stages == "modality"]
    for modality, rows in other.groupby("modality", sort=True)["row"]:
        lines.append(f"  - {len(rows)} row(s) of modality {modality}, not among the study's modalities: rows "
                     f"{_row_ranges(rows)}")
    # Rows of another view are named by modality and reason (view MLO of MG ...), like other modalities.
    for (modality, reason), rows in unused[stages == "view"].groupby(["modality", "reason"], sort=True)["row"]:
        lines.append(f"  - {len(rows)} row(s): {reason}: rows {_row_ranges(rows)}")
    named = unused[~stages.isin(["modality", "view"])]
    for record in named.head(shown).itertuples():
        where = f"row {int(record.row)}" if pd.notna(record.row) else str(record.roi_id)
        who = f", patient {record.patient_id}" if isinstance(record.patient_id, str) and record.patient_id else ""
        lines.append(f"  - {where}{who}: {record.reason}")
    if len(named) > shown:
        lines.append(f"  ... and {len(named) - shown} more (unused_rows.csv in the run folder; the report lists all)")
    return lines


def _row_ranges(rows: pd.Series) -> str:
    """``1-3, 7, 9-10`` from row numbers (unknown rows left out)."""
    numbers = sorted(int(row) for row in rows.dropna())
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ", ".join(f"{low}" if low == high else f"{low}-{high}" for low, high in ranges) or "(unknown)"


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None

"""The terminal's account of unused rows: every row named, other modalities as row ranges."""

from __future__ import annotations

import pandas as pd

from dlradiomics.study.accounting import UNUSED_COLUMNS, unused_summary


def test_rows_of_other_modalities_are_named_as_ranges_and_the_rest_one_by_one():
    records = [{"row": row, "roi_id": f"P{row}/MG/x", "patient_id": f"P{row}", "modality": "MG", "stage": "modality",
                "reason": "modality MG is not among the study's modalities (US)"} for row in (2, 3, 4, 9)]
    records += [{"row": 5, "roi_id": None, "patient_id": "P5", "modality": "US", "stage": "manifest",
                 "reason": "label: unknown label 'maybe'"},
                {"row": 7, "roi_id": "P7/US/y", "patient_id": "P7", "modality": "US", "stage": "features (radiomic)",
                 "reason": "flat ROI"}]
    lines = unused_summary(pd.DataFrame(records, columns=UNUSED_COLUMNS), total_rows=20)
    assert lines[0] == "6 of 20 manifest rows not used (4 by modality, 1 by manifest, 1 by features):"
    assert "  - 4 row(s) of modality MG, not among the study's modalities: rows 2-4, 9" in lines
    assert "  - row 5, patient P5: label: unknown label 'maybe'" in lines
    assert "  - row 7, patient P7: flat ROI" in lines


def test_a_fully_used_manifest_says_so():
    assert unused_summary(pd.DataFrame(columns=UNUSED_COLUMNS), total_rows=3) == [
        "every one of the 3 manifest rows was used"]

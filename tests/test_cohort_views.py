"""The view filter: which images of a modality a study uses, each left-out row with its reason."""

from __future__ import annotations

import pandas as pd
import pytest

from dlradiomics.cohort import checked_view, view_filter


def _table():
    return pd.DataFrame({
        "roi_id": ["A/MG/cc", "A/MG/mlo", "B/MG/x", "B/US/u", "C/MG/cc2"],
        "patient_id": ["A", "A", "B", "B", "C"],
        "modality": ["MG", "MG", "MG", "US", "MG"],
        "view": [" cc ", "MLO", None, None, "Cc"],
    })


def test_views_are_matched_case_insensitively_and_other_modalities_keep_everything():
    selection = view_filter(_table(), {"MG": ["CC"]})
    assert list(selection.kept["roi_id"]) == ["A/MG/cc", "B/US/u", "C/MG/cc2"]
    reasons = dict(zip(selection.left_out["roi_id"], selection.left_out["reason"]))
    assert reasons["A/MG/mlo"] == "view MLO of MG is not among the views used for MG (CC)"
    assert reasons["B/MG/x"].startswith("no view given, and the MG images used are of view(s) CC")


def test_no_filter_keeps_every_row_and_a_table_without_view_column_leaves_out_filtered_modalities():
    assert len(view_filter(_table(), None).kept) == 5 and view_filter(_table(), {}).left_out.empty
    no_column = _table().drop(columns="view")
    assert list(view_filter(no_column, {"MG": ["CC", "MLO"]}).kept["roi_id"]) == ["B/US/u"]


def test_view_names_are_checked():
    assert checked_view(" mlo ") == "MLO"
    for bad in ("", "   ", "C/C", "x" * 40):
        with pytest.raises(ValueError):
            checked_view(bad)


def test_mini_mias_rows_carry_their_view(mini_mias_dir, tmp_path):
    from dlradiomics.cohort import mini_mias_manifest

    frame = mini_mias_manifest(mini_mias_dir, tmp_path / "masks")
    assert set(frame["view"]) == {"MLO"}
    assert view_filter(frame.assign(modality="MG"), {"MG": ["CC"]}).kept.empty

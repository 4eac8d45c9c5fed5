"""Modelling tables from image-level feature tables, and the patient aggregation of predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlradiomics.models import aggregate_by_patient, blocks_of, build_model_table


def feature_table(rows: list[tuple[str, str, int]], prefix: str, n_features: int, seed: int) -> pd.DataFrame:
    """Image-level table; rows are (patient, modality, label); roi_id follows the architecture's pattern."""
    rng = np.random.default_rng(seed)
    records = []
    for image_number, (patient, modality, label) in enumerate(rows):
        record = {
            "roi_id": f"{patient}/{modality}/img{image_number}",
            "patient_id": patient,
            "modality": modality,
            "image": f"/data/{patient}_{image_number}.png",
            "mask": f"/data/{patient}_{image_number}_mask.png",
            "label": label,
            "diagnostics_Versions_PyRadiomics": "3.1.4",
        }
        record.update({f"{prefix}{i:04d}": rng.normal() for i in range(n_features)})
        records.append(record)
    return pd.DataFrame(records)


ROWS = [
    ("A", "US", 1), ("A", "US", 1), ("A", "MG", 1),
    ("B", "US", 0), ("B", "MG", 0),
    ("C", "US", 0),
]


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return {
        "radiomic": feature_table(ROWS, "original_firstorder_f", 3, seed=0),
        "deep": feature_table(ROWS, "deep_", 4, seed=1),
    }


def test_image_level_table_joins_radiomic_and_deep_rows_of_one_roi(tables):
    X, y, groups = build_model_table(tables, ["US"], ["radiomic", "deep"], level="image")
    assert list(blocks_of(X.columns)) == ["US.radiomic", "US.deep"]
    assert len(blocks_of(X.columns)["US.deep"]) == 4
    assert "US.radiomic__original_firstorder_f0000" in X.columns
    assert list(X.index) == ["A", "A", "B", "C"]
    assert list(y) == [1, 1, 0, 0]
    assert list(groups) == list(X.index)
    radiomic = tables["radiomic"].set_index("roi_id")
    deep = tables["deep"].set_index("roi_id")
    assert X.iloc[0]["US.radiomic__original_firstorder_f0000"] == radiomic.loc["A/US/img0", "original_firstorder_f0000"]
    assert X.iloc[0]["US.deep__deep_0003"] == deep.loc["A/US/img0", "deep_0003"]


def test_image_level_keeps_an_image_whose_deep_row_failed(tables):
    tables["deep"] = tables["deep"][tables["deep"]["roi_id"] != "C/US/img5"]
    X, y, _ = build_model_table(tables, ["US"], ["radiomic", "deep"], level="image")
    row_c = X.loc["C"]
    assert row_c.filter(like="US.deep").isna().all()
    assert row_c.filter(like="US.radiomic").notna().all()


def test_patient_level_table_averages_images_and_leaves_missing_modalities_nan(tables):
    X, y, groups = build_model_table(tables, ["US", "MG"], ["radiomic"], level="patient")
    assert list(X.index) == ["A", "B", "C"]
    assert list(y) == [1, 0, 0]
    radiomic = tables["radiomic"]
    a_us_mean = radiomic[(radiomic.patient_id == "A") & (radiomic.modality == "US")]["original_firstorder_f0001"].mean()
    assert X.loc["A", "US.radiomic__original_firstorder_f0001"] == pytest.approx(a_us_mean)
    assert X.loc["C"].filter(like="MG.radiomic").isna().all()
    assert X.loc["C"].filter(like="US.radiomic").notna().all()


def test_bad_requests_are_clear_errors(tables):
    with pytest.raises(ValueError, match="level='patient'"):
        build_model_table(tables, ["US", "MG"], ["radiomic"], level="image")
    with pytest.raises(ValueError, match="no rows of modality \\['MR'\\]"):
        build_model_table(tables, ["MR"], ["radiomic"])
    conflicting = tables["radiomic"].copy()
    conflicting.loc[1, "label"] = 0
    with pytest.raises(ValueError, match="patients \\['A'\\] have images with different labels"):
        build_model_table({"radiomic": conflicting}, ["US"], ["radiomic"])
    with pytest.raises(ValueError, match="not named"):
        blocks_of(["US.radiomic__f1", "age"])


def test_aggregate_by_patient_mean_max_and_nan():
    proba = [0.2, 0.6, np.nan, 0.9, np.nan]
    patients = ["A", "A", "B", "B", "C"]
    mean = aggregate_by_patient(proba, patients)
    assert list(mean.index) == ["A", "B", "C"]
    assert mean["A"] == pytest.approx(0.4)
    assert mean["B"] == pytest.approx(0.9)
    assert np.isnan(mean["C"])
    assert aggregate_by_patient(proba, patients, method="max")["A"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="method"):
        aggregate_by_patient(proba, patients, method="median")
    with pytest.raises(ValueError, match="entries"):
        aggregate_by_patient(proba, patients[:3])

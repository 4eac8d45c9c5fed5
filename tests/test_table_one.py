"""Table 1: counts by class, the right test per variable, each checked against a computation from its definition."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2, hypergeom, norm

from dlradiomics.report.table_one import table_one, table_one_variables


def _cohort(n_patients: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(n_patients):
        label = int(index % 3 == 0)
        age = float(40 + 10 * label + rng.normal(0, 8)) if index != 7 else np.nan
        for side in ("left", "right")[: 1 + index % 2]:
            rows.append({"roi_id": f"P{index}/US/{side}", "patient_id": f"P{index}", "modality": "US",
                         "image": "i.png", "mask": "m.png", "label": label,
                         "device": ["GE", "Philips", "Toshiba"][index % 3 if index % 5 else 0],
                         "age": age,
                         "birads": int(rng.choice([2, 3, 4, 5], p=[0.1, 0.2, 0.4, 0.3])),  # per lesion
                         "case": index, "fold5": index % 5, "source": f"file {index}-{side}"})
    return pd.DataFrame(rows)


def test_variables_are_found_and_identifiers_free_text_and_folds_left_out_with_a_note():
    variables, notes = table_one_variables(_cohort(), exclude=["fold5"])
    kinds = {variable.name: (variable.kind, variable.unit) for variable in variables}
    assert kinds == {"device": ("categorical", "patients"), "age": ("continuous", "patients"),
                     "birads": ("categorical", "images")}
    assert any(note.startswith("case (") and "identifier" in note for note in notes)
    assert any(note.startswith("source (") and "free text" in note for note in notes)
    # a fold assignment the study does not use (BUS-BRA's fold10 beside fold5) is design, not a characteristic
    variables, notes = table_one_variables(_cohort().assign(fold10=lambda frame: frame["case"] % 10),
                                           exclude=["fold5"])
    assert "fold10" not in {variable.name for variable in variables}
    assert any(note.startswith("fold10 (") and "fold or split" in note for note in notes)


def test_counts_percentages_and_the_chi_square_test_from_its_definition():
    cohort = _cohort()
    table = table_one(cohort, table_one_variables(cohort, exclude=["fold5"])[0])
    patients = table[table["variable"] == "patients"].iloc[0]
    assert (patients["benign"], patients["malignant"]) == ("40", "20")
    device = cohort.groupby("patient_id").agg(label=("label", "first"), device=("device", "first"))
    observed = pd.crosstab(device["device"], device["label"]).to_numpy()
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    assert (expected >= 5).all()
    statistic = ((observed - expected) ** 2 / expected).sum()
    p = chi2.sf(statistic, (observed.shape[0] - 1) * (observed.shape[1] - 1))
    header = table[table["variable"] == "device"].iloc[0]
    assert header["test"] == "chi-square" and header["p"] == ("<0.001" if p < 0.001 else f"{p:.3f}")
    ge = table[(table["level"] == "GE")].iloc[0]
    count = int(((device["device"] == "GE") & (device["label"] == 0)).sum())
    assert ge["benign"] == f"{count} ({100 * count / 40:.1f}%)"


def test_small_two_by_two_tables_use_fishers_exact_test():
    # Fisher's tea-tasting table: 3 of 4 right; two-sided p = 34/70 = 0.486 (hypergeometric).
    rows = [{"patient_id": f"P{i}", "modality": "US", "label": label, "guess": guess}
            for i, (label, guess) in enumerate([(1, "milk")] * 3 + [(1, "tea")] + [(0, "milk")] + [(0, "tea")] * 3)]
    table = table_one(pd.DataFrame(rows))
    header = table[table["variable"] == "guess"].iloc[0]
    probabilities = hypergeom(8, 4, 4).pmf(range(5))
    p = probabilities[probabilities <= probabilities[3] * (1 + 1e-7)].sum()
    assert header["test"] == "Fisher exact" and header["p"] == f"{p:.3f}" == "0.486"


def test_continuous_variables_use_mann_whitney_and_count_missing_values():
    cohort = _cohort()
    table = table_one(cohort, table_one_variables(cohort, exclude=["fold5"])[0])
    age = table[table["variable"] == "age"].iloc[0]
    assert age["test"] == "Mann-Whitney U" and age["level"] == "median (IQR)"
    ages = cohort.groupby("patient_id").agg(label=("label", "first"), age=("age", "first")).dropna()
    benign, malignant = ages.loc[ages["label"] == 0, "age"], ages.loc[ages["label"] == 1, "age"]
    # U from its definition (pairs won), p from the normal approximation (no ties in continuous ages).
    u = sum((b > m) + 0.5 * (b == m) for b in benign for m in malignant)
    n1, n2 = len(benign), len(malignant)
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    assert float(age["p"].lstrip("<")) == pytest.approx(2 * norm.sf(z), abs=1e-3) or age["p"] == "<0.001"
    assert f"{benign.median():.3g}" in age["benign"]
    missing = table[(table["level"] == "(missing)")].iloc[0]
    assert missing["benign"].startswith("1 ") or missing["malignant"].startswith("1 ")


def test_per_lesion_variables_are_counted_per_image():
    cohort = _cohort()
    table = table_one(cohort, table_one_variables(cohort, exclude=["fold5"])[0])
    start = table.index[table["variable"] == "birads"][0]
    levels = table.iloc[start + 1:start + 5]
    assert list(levels["level"]) == ["2", "3", "4", "5"] and set(levels["unit"]) == {"images"}
    counted = sum(int(cell.split()[0]) for cell in pd.concat([levels["benign"], levels["malignant"]]))
    assert counted == len(cohort)

"""A study with clinical variables, a reference operating point, choice at that operating point and
leave-one-site-out validation, end to end on the demo's ultrasound images."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from dlradiomics.api import Study
from dlradiomics.demo.demo import DEMO_MANIFEST
from dlradiomics.study.preflight import PreflightError
from dlradiomics.study.settings import StudySettings, StudySettingsError

N_PER_CLASS = 14


def _manifest(folder) -> pd.DataFrame:
    manifest = pd.read_csv(DEMO_MANIFEST)
    us = manifest[manifest["modality"] == "US"]
    rows = pd.concat([us[us["label"] == label].head(N_PER_CLASS) for label in (0, 1)]).reset_index(drop=True)
    for column in ("image", "mask"):
        rows[column] = [str(DEMO_MANIFEST.parent / path) for path in rows[column]]
    rank = rows.groupby("label").cumcount()
    # BI-RADS mostly follows the label, with a few benign 4s and a malignant 3 (an imperfect reader).
    rows["birads"] = np.where(rows["label"] == 1, np.where(rank % 5 == 0, 3, 4 + rank % 2),
                              np.where(rank % 4 == 0, 4, 2 + rank % 2))
    rows.loc[rows.index[3], "birads"] = np.nan  # one benign patient without a BI-RADS
    rows["age"] = 35.0 + 2 * rank + 5 * rows["label"]
    # Three scanners; the smallest holds two benign patients only.
    rows["device"] = np.where(rank % 3 == 0, "Toshiba", "GE")
    rows.loc[(rows["label"] == 0) & rank.isin([1, 2]), "device"] = "U-Systems"
    rows.to_csv(folder / "manifest.csv", index=False)
    return rows


def _study(folder, **changes) -> dict:
    study = {
        "name": "clinic",
        "cohort": {"manifest": "manifest.csv", "modalities": ["US"]},
        "classifiers": ["logistic"],
        "feature_sources": ["radiomic", "clinical", "radiomic+clinical"],
        "fusion": ["single", "early"],
        "clinical": {"columns": ["birads", "age"], "categorical": ["birads"]},
        "reference": {"column": "birads", "positive_at": 4, "name": "radiologist"},
        "choice": {"by": "specificity_at_sensitivity"},
        "threshold": {"rule": "sensitivity", "value": 0.9},
        "cv": {"outer_folds": 3, "inner_folds": 3, "seed": 5, "group_column": "device"},
        "report": {"bootstrap": 20, "gradcam_examples": 0, "canary": False},
    }
    study.update(changes)
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    return study


@pytest.fixture(scope="module")
def clinic_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clinic")
    rows = _manifest(folder)
    _study(folder)
    return rows, Study.from_yaml(folder / "study.yaml").run(progress=False)


def test_the_report_shows_the_reference_the_model_and_both(clinic_study):
    rows, result = clinic_study
    html = result.report_path.read_text()
    assert "The clinical operating point: radiologist, the model, and both</h2>" in html
    table = pd.read_csv(result.report_path.parent / "tables" / "reference_comparison.csv")
    assert table["role"].tolist()[:4] == ["radiologist alone", "model alone", "model + clinical variables",
                                      "clinical variables alone"]
    # The reference row, computed by hand from the manifest: BI-RADS >= 4 among patients who have one.
    scored = rows.dropna(subset=["birads"])
    called = scored["birads"] >= 4
    sensitivity = called[scored["label"] == 1].mean()
    specificity = (~called[scored["label"] == 0]).mean()
    assert table.loc[0, "sensitivity (95% CI)"].startswith(f"{sensitivity:.3f}")
    assert table.loc[0, "specificity (95% CI)"].startswith(f"{specificity:.3f}")
    assert int(table.loc[0, "patients"]) == len(scored)
    assert table.loc[1:, "p specificity (McNemar mid-p; exact)"].str.contains(";").all()
    # The headline names the reference beside the chosen model, on the same patients.
    assert (f"sensitivity {sensitivity:.3f}, specificity {specificity:.3f} ({len(scored)} patients); the chosen "
            "model&#39;s specificity on the same patients") in html


def test_the_chosen_model_has_the_best_inner_specificity(clinic_study):
    _, result = clinic_study
    completed = result.results[result.results["status"] == "ok"]
    best = completed.sort_values(["inner_specificity", "inner_auc"], ascending=False).iloc[0]
    assert (result.best["source"], result.best["fusion"]) == (best["source"], best["fusion"])
    html = result.report_path.read_text()
    assert "highest mean inner-CV specificity at the target sensitivity" in html
    assert "(highest mean inner-CV specificity at the target sensitivity)</dd>" in html  # the headline
    assert "Clinical variables from the manifest: birads, age (birads categorical" in html


def test_the_bundle_records_the_clinical_variables_of_a_clinical_model(clinic_study):
    _, result = clinic_study
    metadata = json.loads((result.bundle_path / "bundle.json").read_text())
    uses_clinical = "clinical" in metadata["feature_kinds"]
    assert uses_clinical == ("clinical" in result.best["source"])
    if uses_clinical:
        assert metadata["settings"]["clinical"]["categorical"] == {"birads": ["2", "3", "4", "5"]}


def test_leave_one_site_out_is_reported_beside_the_main_folds_and_honest_about_small_sites(clinic_study):
    _, result = clinic_study
    tables = result.report_path.parent / "tables"
    pooled = pd.read_csv(tables / "site_validation.csv")
    assert set(pooled["role"]) >= {"model alone", "model + clinical variables"}
    assert pooled["AUC, main folds"].notna().all()
    per_site = pd.read_csv(tables / "site_validation_per_site.csv")
    small = per_site[per_site["held-out site"] == "U-Systems"]
    assert len(small) and small["note"].str.contains("only benign patients").all()
    assert small["AUC (95% CI)"].eq("not defined").all()
    oof = pd.read_csv(result.run_dir / "site_oof_predictions.csv")
    folds = pd.read_csv(result.run_dir / "folds.csv")
    assert oof["patient_id"].nunique() == folds["patient_id"].nunique()


def test_clinical_settings_are_checked_before_any_work(tmp_path):
    rows = _manifest(tmp_path)
    with pytest.raises(StudySettingsError, match="need a `clinical:` section"):
        StudySettings.from_mapping({**_study(tmp_path), "clinical": None}, base_dir=tmp_path)
    with pytest.raises(StudySettingsError, match="needs threshold: {rule: sensitivity"):
        StudySettings.from_mapping({**_study(tmp_path), "threshold": {"rule": "youden"}}, base_dir=tmp_path)
    with pytest.raises(StudySettingsError, match="categorical names \\['device'\\]"):
        StudySettings.from_mapping({**_study(tmp_path), "clinical": {"columns": ["birads"],
                                                                      "categorical": ["device"]}}, base_dir=tmp_path)
    _study(tmp_path, clinical={"columns": ["birads", "weight"]})
    with pytest.raises(PreflightError, match="no column 'weight'"):
        Study.from_yaml(tmp_path / "study.yaml").run(progress=False)
    # A patient with two images of different BI-RADS stops the study, unless a rule combines them.
    manifest = pd.read_csv(DEMO_MANIFEST)
    spare = manifest[(manifest["modality"] == "US") & (manifest["label"] == rows.loc[0, "label"])].iloc[[-1]]
    second_image = rows.iloc[[0]].assign(birads=5, image=str(DEMO_MANIFEST.parent / spare["image"].iloc[0]),
                                         mask=str(DEMO_MANIFEST.parent / spare["mask"].iloc[0]))
    doubled = pd.concat([rows, second_image], ignore_index=True)
    doubled.to_csv(tmp_path / "manifest.csv", index=False)
    _study(tmp_path)
    with pytest.raises(PreflightError, match=f"patient {rows.loc[0, 'patient_id']}: column 'birads' differs"):
        Study.from_yaml(tmp_path / "study.yaml").run(progress=False)

"""A study that selects views (``cohort: {views: {MG: [CC]}}``): rows of other views are counted and
named, the bundle records the filter, and predict applies it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from dlradiomics.api import Study, load_bundle, predict_manifest
from dlradiomics.cohort import Cohort
from dlradiomics.demo.demo import DEMO_MANIFEST
from dlradiomics.study.accounting import unused_summary
from dlradiomics.study.preflight import PreflightError, check_views_present
from dlradiomics.study.settings import StudySettings, StudySettingsError

N_PER_CLASS = 8


def _flipped(source: str, target) -> str:
    Image.fromarray(np.fliplr(np.asarray(Image.open(source)))).save(target)
    return str(target)


@pytest.fixture(scope="module")
def view_study(tmp_path_factory):
    """16 demo US images renamed MG view CC, each patient with a mirrored MLO image as well."""
    folder = tmp_path_factory.mktemp("views")
    demo = pd.read_csv(DEMO_MANIFEST)
    us = demo[demo["modality"] == "US"]
    chosen = pd.concat([us[us["label"] == label].head(N_PER_CLASS + 1) for label in (0, 1)])
    rows = []
    for record in chosen.itertuples():
        image, mask = str(DEMO_MANIFEST.parent / record.image), str(DEMO_MANIFEST.parent / record.mask)
        base = {"patient_id": record.patient_id, "modality": "MG", "label": record.label}
        rows.append({**base, "image": image, "mask": mask, "view": "cc"})
        rows.append({**base, "image": _flipped(image, folder / f"{record.patient_id}_mlo.png"),
                     "mask": _flipped(mask, folder / f"{record.patient_id}_mlo_mask.png"), "view": "MLO"})
    table = pd.DataFrame(rows)
    held_out = table[table["patient_id"].isin(chosen.groupby("label").tail(1)["patient_id"])]
    table[~table.index.isin(held_out.index)].to_csv(folder / "manifest.csv", index=False)
    study = {
        "name": "views",
        "cohort": {"manifest": "manifest.csv", "modalities": ["MG"], "views": {"mg": ["CC"]}},
        "classifiers": ["logistic"], "feature_sources": ["radiomic"], "fusion": ["single"],
        "selection": {"lasso": False},
        "cv": {"outer_folds": 2, "inner_folds": 2, "seed": 1},
        "report": {"bootstrap": 10, "gradcam_examples": 0, "canary": False},
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    result = Study.from_yaml(folder / "study.yaml").run(progress=False)
    return folder, result, held_out


def test_rows_of_other_views_are_counted_and_named(view_study):
    _, result, _ = view_study
    left_out = result.unused_rows[result.unused_rows["stage"] == "view"]
    assert len(left_out) == 2 * N_PER_CLASS
    assert set(left_out["reason"]) == {"view MLO of MG is not among the views used for MG (CC)"}
    assert set(left_out["roi_id"].str.endswith("_mlo"))
    lines = unused_summary(result.unused_rows, total_rows=result.n_manifest_rows)
    assert any(line.startswith(f"  - {2 * N_PER_CLASS} row(s): view MLO of MG") for line in lines)
    html = result.report_path.read_text()
    assert "of views the study does not use" in html and "Views used (cohort.views" in html
    oof = pd.read_csv(result.run_dir / "oof_predictions.csv")
    assert oof["patient_id"].nunique() == 2 * N_PER_CLASS


def test_bundle_records_the_views_and_predict_applies_them(view_study, tmp_path):
    folder, result, held_out = view_study
    bundle = load_bundle(result.bundle_path)
    assert bundle.settings["views"] == {"MG": ["CC"]}
    cc_only = held_out[held_out["view"] == "cc"]
    only_mlo = held_out[held_out["view"] == "MLO"].iloc[[0]].assign(patient_id="ONLY_MLO")
    cc_only.to_csv(tmp_path / "cc.csv", index=False)
    pd.concat([held_out, only_mlo]).to_csv(tmp_path / "mixed.csv", index=False)
    store = tmp_path / "store"

    reference = predict_manifest(bundle, tmp_path / "cc.csv", store_dir=store, gradcam=False).set_index("patient_id")
    mixed = predict_manifest(bundle, tmp_path / "mixed.csv", store_dir=store, gradcam=False).set_index("patient_id")

    for patient in cc_only["patient_id"]:
        assert mixed.loc[patient, "probability"] == pytest.approx(reference.loc[patient, "probability"])
        assert "image left out" in mixed.loc[patient, "warnings"] and "view MLO of MG" in mixed.loc[patient, "warnings"]
    assert np.isnan(mixed.loc["ONLY_MLO", "probability"])
    assert mixed.loc["ONLY_MLO", "reason"].startswith("every image of this patient is of a view the model does not use")


def test_views_setting_is_checked(tmp_path):
    base = {"name": "x", "cohort": {"manifest": "m.csv", "modalities": ["US", "MG"]}}
    settings = StudySettings.from_mapping({**base, "cohort": {**base["cohort"], "views": {" mg ": [" cc ", "mlo"]}}},
                                          base_dir=tmp_path)
    assert settings.cohort.views == {"MG": ["CC", "MLO"]}
    with pytest.raises(StudySettingsError, match="views names MRI, which is not among cohort.modalities"):
        StudySettings.from_mapping({**base, "cohort": {**base["cohort"], "views": {"MRI": ["AX"]}}}, base_dir=tmp_path)
    with pytest.raises(StudySettingsError, match="views.MG is empty"):
        StudySettings.from_mapping({**base, "cohort": {**base["cohort"], "views": {"MG": []}}}, base_dir=tmp_path)


def test_a_view_no_row_has_stops_the_study_naming_the_views_there_are(tmp_path):
    rows = pd.DataFrame({"patient_id": ["A", "B", "C"], "modality": ["MG", "MG", "US"],
                         "image": ["a.png", "b.png", "c.png"], "mask": ["a_m.png", "b_m.png", "c_m.png"],
                         "label": [0, 1, 0], "view": ["MLO", "", None]})
    for name in [*rows["image"], *rows["mask"]]:
        (tmp_path / name).write_bytes(b"")
    cohort = Cohort.from_table(rows, tmp_path)
    with pytest.raises(PreflightError, match=r"MG views CC match none of its 2 rows, whose views are: "
                                             r"\(blank\) \(1 rows\), MLO \(1 rows\)"):
        check_views_present(cohort, ["MG", "US"], {"MG": ["CC"]})
    check_views_present(cohort, ["MG", "US"], {"MG": ["MLO"]})

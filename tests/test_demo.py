"""The embedded demo data: small, licensed, a valid manifest with patients lacking a modality."""

from __future__ import annotations

import yaml

from dlradiomics.cohort import read_manifest
from dlradiomics.demo.demo import DEMO_DATA, DEMO_MANIFEST, DEMO_OPENING, write_demo_study
from dlradiomics.study.settings import StudySettings

PAIRING_SENTENCE = ("Modalities are paired across different people; this demonstrates the mechanics of fusion and "
                    "says nothing clinical.")


def test_demo_data_is_small_and_carries_licences_and_citations():
    size = sum(path.stat().st_size for path in DEMO_DATA.rglob("*") if path.is_file())
    assert size < 5 * 1024 * 1024
    assert (DEMO_DATA / "us" / "LICENSE.txt").is_file() and (DEMO_DATA / "mg" / "Licence.txt").is_file()
    readme = (DEMO_DATA / "README.md").read_text()
    assert PAIRING_SENTENCE in readme
    for citation in ("BUS-BRA", "Mammographic Image Analysis Society", "BreastDM"):
        assert citation in readme


def test_demo_manifest_is_valid_and_has_patients_missing_a_modality():
    cohort = read_manifest(DEMO_MANIFEST, check_images=True)
    assert cohort.problems == []
    table = cohort.table
    assert set(table["modality"]) == {"US", "MG", "MRI"}
    modalities_per_patient = table.groupby("patient_id")["modality"].nunique()
    assert (modalities_per_patient < 3).any() and (modalities_per_patient == 3).any()
    assert table.groupby("patient_id")["label"].nunique().max() == 1
    assert table.groupby("label")["patient_id"].nunique().to_dict() == {0: 20, 1: 20}


def test_demo_study_is_valid_and_opens_with_the_pairing_sentence(tmp_path):
    path = write_demo_study(tmp_path)
    settings = StudySettings.from_yaml(path)
    assert settings.report.note == DEMO_OPENING
    assert DEMO_OPENING.startswith(PAIRING_SENTENCE)
    assert yaml.safe_load(path.read_text())["cohort"]["manifest"] == str(DEMO_MANIFEST)

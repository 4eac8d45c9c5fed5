"""Radiomic feature families from a study file: validated, and carried into the parameter mapping."""

from __future__ import annotations

import pytest

from dlradiomics.features.radiomic import FeatureFamilies, settings_sha256
from dlradiomics.study.settings import StudySettings, StudySettingsError


def _settings(radiomics: dict) -> StudySettings:
    return StudySettings.from_mapping({"cohort": {"manifest": "m.csv"}, "radiomics": radiomics})


def test_study_families_reach_the_parameter_mapping_and_its_hash():
    plain = _settings({}).radiomics.parameter_mapping()
    with_families = _settings({
        "peritumoral": {"width_px": 12}, "log": {"sigmas": [1, 2]}, "wavelet": {"name": "haar"},
        "normalisation": {"US": "roi_zscore"}}).radiomics.parameter_mapping()
    assert "dlradiomics" not in plain
    families = FeatureFamilies.from_params(with_families)
    assert families.peritumoral.width_px == 12 and families.peritumoral.width_mm is None
    assert families.log.sigmas == (1.0, 2.0) and families.wavelet.name == "haar"
    assert families.normalisation_for("US") == "roi_zscore"
    assert settings_sha256(with_families) != settings_sha256(plain)


@pytest.mark.parametrize("radiomics, named", [
    ({"peritumoral": {"width_px": 0}}, "radiomics.peritumoral.width_px"),
    ({"log": {"sigmas": [2, -1]}}, "radiomics.log"),
    ({"normalisation": {"US": "zscore"}}, "radiomics.normalisation.US"),
    ({"wavelets": {}}, "radiomics.wavelets"),
])
def test_bad_family_settings_name_the_key(radiomics, named):
    with pytest.raises(StudySettingsError, match=named):
        _settings(radiomics)

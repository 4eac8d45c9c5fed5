"""PyRadiomics settings: the packaged paper defaults, overrides, and the settings hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
import yaml

from dlradiomics.features.radiomic import (
    create_extractor,
    load_radiomics_params,
    resolve_radiomics_params,
    settings_sha256,
)

PAPER_FEATURE_CLASSES = {"firstorder", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm"}


def test_defaults_are_the_papers_2d_settings():
    params = load_radiomics_params()
    assert params["setting"]["force2D"] is True
    assert params["setting"]["binWidth"] == 25
    assert set(params["imageType"]) == {"Original"}
    assert set(params["featureClass"]) == PAPER_FEATURE_CLASSES
    assert "shape" not in params["featureClass"]


def test_pyradiomics_accepts_the_defaults_and_enables_exactly_those_classes():
    extractor = create_extractor(load_radiomics_params())
    assert set(extractor.enabledFeatures) == PAPER_FEATURE_CLASSES
    assert extractor.settings["binWidth"] == 25


def test_setting_overrides_merge_and_class_overrides_replace():
    params = load_radiomics_params(overrides={"setting": {"binWidth": 10}, "featureClass": {"firstorder": []}})
    assert params["setting"]["binWidth"] == 10
    assert params["setting"]["force2D"] is True
    assert set(params["featureClass"]) == {"firstorder"}
    # The packaged defaults are not modified by an override.
    assert load_radiomics_params()["setting"]["binWidth"] == 25


def test_unknown_override_section_is_refused():
    with pytest.raises(ValueError, match="featureClasses"):
        load_radiomics_params(overrides={"featureClasses": {"glcm": []}})


def test_a_users_yaml_file_is_used_as_written(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"setting": {"binWidth": 5, "force2D": True}, "featureClass": {"glcm": []}}))
    params = resolve_radiomics_params(path)
    assert params["setting"] == {"binWidth": 5, "force2D": True}
    assert set(params["featureClass"]) == {"glcm"}


def test_missing_or_malformed_parameter_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_radiomics_params(tmp_path / "nowhere.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="broken.yaml"):
        load_radiomics_params(broken)


def test_settings_hash_depends_on_content_not_key_order():
    params = load_radiomics_params()
    reordered = {section: params[section] for section in reversed(list(params))}
    assert settings_sha256(reordered) == settings_sha256(params)
    changed = load_radiomics_params(overrides={"setting": {"binWidth": 24}})
    assert settings_sha256(changed) != settings_sha256(params)


def test_a_misspelt_setting_is_refused_with_its_name():
    with pytest.raises(ValueError, match="binWidht"):
        create_extractor(load_radiomics_params(overrides={"setting": {"binWidht": 5}}))


def test_a_refused_setting_prints_nothing_but_its_error():
    # pykwalify logs each schema error before raising; outside pytest's log capture that log would
    # reach the terminal above the one-line message, so this runs in a fresh interpreter.
    script = ("from dlradiomics.features.radiomic import create_extractor, load_radiomics_params\n"
              "try:\n"
              "    create_extractor(load_radiomics_params(overrides={'setting': {'binWidht': 5}}))\n"
              "except ValueError as error:\n"
              "    print(error)\n")
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "binWidht" in finished.stdout
    assert "validation.invalid" not in finished.stderr and "binWidht" not in finished.stderr


def test_settings_hash_changes_with_the_extraction_convention():
    # Rows computed before features followed IBSI (native 2D images) were keyed by the hash of the
    # mapping alone; the convention is now part of the hash, so none of them is ever read back.
    params = load_radiomics_params()
    mapping_only = hashlib.sha256(
        json.dumps(params, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    ).hexdigest()
    assert settings_sha256(params) != mapping_only

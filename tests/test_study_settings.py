"""Study settings: the example validates, bad values are named with what is allowed, paths resolve."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from dlradiomics.cli import app
from dlradiomics.models import ModelConfiguration, build_estimator
from dlradiomics.study.settings import StudySettings, StudySettingsError, write_example_study
from dlradiomics.study.stages import dlr_for


def _write(tmp_path, mapping) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


def test_example_study_is_valid_and_resolves_paths(tmp_path):
    path = write_example_study(tmp_path / "sub" / "study.yaml")
    settings = StudySettings.from_yaml(path)
    assert settings.cohort.manifest == (tmp_path / "sub" / "manifest.csv").resolve()
    assert settings.output == (tmp_path / "sub" / "output").resolve()
    assert settings.source_path == path.resolve()
    assert "# " in path.read_text()  # commented for the reader


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"cohort": {"manifest": "m.csv", "modalities": ["US", "U.S."]}}, ["cohort.modalities.1", "'U.S.'", "letters, digits"]),
        ({"cohort": {"manifest": "m.csv", "modalities": ["US", " us"]}}, ["cohort.modalities", "more than once"]),
        ({"cohort": {"manifest": "m.csv"}, "qa": {"allow_duplicate": True}}, ["qa.allow_duplicate", "unknown key"]),
        ({"cohort": {"manifest": "m.csv"}, "classifiers": ["svm", "tree"]}, ["classifiers.1", "'tree'", "'lightgbm'"]),
        ({"cohort": {"manifest": "m.csv"}, "cv": {"outer_folds": 1}}, ["cv.outer_folds", "value 1", "greater than or equal to 2"]),
        ({"cohort": {"manifest": "m.csv"}, "fusion": ["late"]}, ["fusion.0", "'late'", "'stacking'"]),
        ({"cohort": {"manifest": "m.csv"}, "threshold": {"rule": "sensitivity"}}, ["threshold", "needs a value"]),
        ({"cohort": {"manifest": "m.csv"}, "bootstrapp": 100}, ["bootstrapp", "unknown key"]),
        ({"cohort": {"manifest": "m.csv"}, "dlr": {"composition": "pca"}}, ["dlr.composition", "'pca'", "'whole_table'"]),
        ({"cohort": {"manifest": "m.csv"}, "dlr": {"deep_components": 0}}, ["dlr.deep_components", "value 0"]),
        ({}, ["cohort", "required key is missing"]),
    ],
)
def test_errors_name_the_key_the_value_and_what_is_allowed(tmp_path, mapping, expected):
    path = _write(tmp_path, mapping)
    with pytest.raises(StudySettingsError) as caught:
        StudySettings.from_yaml(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_modalities_are_free_names_in_the_canonical_spelling(tmp_path):
    path = _write(tmp_path, {"cohort": {"manifest": "m.csv", "modalities": [" us ", "mri_t2", "DCE", "Dbt"]}})
    assert StudySettings.from_yaml(path).cohort.modalities == ["US", "MRI_T2", "DCE", "DBT"]


def test_a_billion_laughs_study_file_is_refused_at_once(tmp_path):
    import time

    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    with pytest.raises(StudySettingsError, match="alias bomb"):
        StudySettings.from_yaml(path)
    assert time.perf_counter() - started < 2


def test_a_key_given_twice_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("cohort: {manifest: m.csv}\ncv: {outer_folds: 3}\ncv: {outer_folds: 10}\n")
    with pytest.raises(StudySettingsError, match="'cv' appears twice.*lines 2 and 3"):
        StudySettings.from_yaml(path)


def test_dlr_keys_reach_the_dlr_estimator(tmp_path):
    mapping = {"cohort": {"manifest": "m.csv"}, "deep": {"pca_components": 16},
               "dlr": {"composition": "paper", "deep_components": 40, "radiomic_components": 30}}
    settings = StudySettings.from_yaml(_write(tmp_path, mapping))
    estimator = build_estimator(ModelConfiguration("dlr", ("US", "MG"), "stacking", "svm"), dlr=dlr_for(settings))
    assert (estimator.composition, estimator.deep_components, estimator.radiomic_components) == ("paper", 40, 30)
    assert estimator.deep_components_per_modality == 16
    default = StudySettings.from_mapping({"cohort": {"manifest": "m.csv"}}).dlr
    assert (default.composition, default.deep_components, default.radiomic_components) == ("paper", 51, 57)


def test_fold_column_and_split_file_are_exclusive(tmp_path):
    path = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "cv": {"fold_column": "fold", "split_file": "s.csv"}})
    with pytest.raises(StudySettingsError, match="either fold_column or split_file"):
        StudySettings.from_yaml(path)


def test_a_missing_file_and_bad_yaml_are_named(tmp_path):
    with pytest.raises(StudySettingsError, match="not found"):
        StudySettings.from_yaml(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("cohort: [unclosed")
    with pytest.raises(StudySettingsError, match="not valid YAML"):
        StudySettings.from_yaml(broken)


def test_init_command_writes_a_valid_study_and_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    target = tmp_path / "study.yaml"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 0
    StudySettings.from_yaml(target)
    again = runner.invoke(app, ["init", str(target)])
    assert again.exit_code == 1 and "exists" in again.output


def test_run_command_reports_a_bad_setting_without_a_traceback(tmp_path):
    path = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "n_jobs": 0})
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "n_jobs" in result.output and "value 0" in result.output


def test_run_command_names_a_missing_manifest(tmp_path):
    path = _write(tmp_path, {"cohort": {"manifest": "absent.csv"}})
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "absent.csv" in result.output and "not found" in result.output


HGB = "sklearn.ensemble.HistGradientBoostingClassifier"


def test_own_classifier_is_imported_checked_and_seeded(tmp_path):
    own = {"name": "hgb", "estimator": HGB, "params": {"max_iter": 20}}
    settings = StudySettings.from_yaml(_write(tmp_path, {"cohort": {"manifest": "m.csv"}, "feature_sources": ["radiomic"],
                                                          "classifiers": ["logistic", own]}))
    assert settings.classifier_names() == ["logistic", "hgb"]
    built = settings.own_classifiers()[0].build(random_state=7)
    from sklearn.ensemble import HistGradientBoostingClassifier

    assert type(built) is HistGradientBoostingClassifier
    assert built.get_params()["max_iter"] == 20 and built.get_params()["random_state"] == 7
    assert settings.to_yaml_dict()["classifiers"][1] == own


@pytest.mark.parametrize(("own", "expected"), [
    ({"name": "ridge", "estimator": "sklearn.linear_model.Ridge"}, ["classifiers.1", "Ridge", "not a scikit-learn classifier"]),
    ({"name": "x", "estimator": "nosuch.module.Thing"}, ["classifiers.1", "cannot be imported", "nosuch"]),
    ({"name": "x", "estimator": HGB, "params": {"bogus": 1}}, ["classifiers.1", "does not take params", "bogus"]),
    ({"name": "x", "estimator": "HistGradientBoostingClassifier"}, ["classifiers.1", "not an import path"]),
    ({"name": "logistic", "estimator": HGB}, ["classifiers.1", "registered classifier's"]),
    ({"estimator": HGB}, ["classifiers.1.name", "required key is missing"]),
])
def test_a_bad_own_classifier_is_named_when_the_study_loads(tmp_path, own, expected):
    path = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "feature_sources": ["radiomic"],
                             "classifiers": ["svm", own]})
    with pytest.raises(StudySettingsError) as caught:
        StudySettings.from_yaml(path)
    for fragment in expected:
        assert fragment in str(caught.value)


def test_two_own_classifiers_may_not_share_a_name(tmp_path):
    own = {"name": "hgb", "estimator": HGB}
    path = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "feature_sources": ["radiomic"], "classifiers": [own, own]})
    with pytest.raises(StudySettingsError, match="'hgb'.*more than once"):
        StudySettings.from_yaml(path)


@pytest.mark.parametrize(("radiomics", "key", "value"), [
    ({"params": "absent.yaml"}, "radiomics.params", "absent.yaml"),
    ({"params": "not_a_mapping.yaml"}, "radiomics.params", "not_a_mapping.yaml"),
    ({"params": "bad_bin.yaml"}, "radiomics.params", "bad_bin.yaml"),
    ({"overrides": {"setting": {"binWidth": -3}}}, "radiomics.overrides", "-3"),
])
def test_a_missing_or_invalid_pyradiomics_setting_is_named_when_the_study_loads(tmp_path, radiomics, key, value):
    (tmp_path / "not_a_mapping.yaml").write_text("- binWidth\n")
    (tmp_path / "bad_bin.yaml").write_text(yaml.safe_dump({"setting": {"binWidth": "wide"}}))
    path = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "feature_sources": ["radiomic"], "radiomics": radiomics})
    with pytest.raises(StudySettingsError) as caught:
        StudySettings.from_yaml(path)
    assert f"{key}: value" in str(caught.value) and value in str(caught.value)


def test_a_valid_params_file_loads(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"setting": {"binWidth": 10}}))
    path = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "feature_sources": ["radiomic"],
                             "radiomics": {"params": "params.yaml"}})
    assert StudySettings.from_yaml(path).radiomics.parameter_mapping()["setting"]["binWidth"] == 10


def test_an_unknown_backbone_is_named_when_the_study_loads(tmp_path):
    path = _write(tmp_path, {"cohort": {"manifest": "m.csv"}, "feature_sources": ["deep"], "deep": {"backbone": "resnet5"}})
    with pytest.raises(StudySettingsError) as caught:
        StudySettings.from_yaml(path)
    assert "deep.backbone: value 'resnet5'" in str(caught.value) and "resnet50" in str(caught.value)

"""Packaging and the user's first steps: version, shipped docs, lock file versus ranges, README commands,
one default backbone, and the `latest` link to the newest run."""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from typer.testing import CliRunner

import dlradiomics
from dlradiomics.cli import app
from dlradiomics.cli.embed import embed
from dlradiomics.cli.gradcam import gradcam
from dlradiomics.features.defaults import DEFAULT_BACKBONE
from dlradiomics.study.run_folder import LATEST_FILE, LATEST_LINK, create_run_folder, point_latest_at
from dlradiomics.study.settings import DeepSettings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as stream:
        return tomllib.load(stream)


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[canonicalize_name(name)] = pinned.strip()
    return pins


def test_version_option_prints_the_package_version():
    outcome = CliRunner().invoke(app, ["--version"])
    assert outcome.exit_code == 0
    assert outcome.output.strip() == f"dlradiomics {dlradiomics.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", dlradiomics.__version__)
    assert version("dlradiomics") == dlradiomics.__version__  # the installed metadata reads the same attribute


def test_the_manifest_page_ships_inside_the_package():
    outcome = CliRunner().invoke(app, ["docs", "manifest"])
    assert outcome.exit_code == 0
    assert outcome.output.startswith("# The cohort manifest")
    assert "patient_id" in outcome.output and "mini-MIAS" in outcome.output
    listing = CliRunner().invoke(app, ["docs"])
    assert "manifest" in listing.output
    unknown = CliRunner().invoke(app, ["docs", "nonsense"])
    assert unknown.exit_code == 2 and "pages: manifest" in unknown.output
    assert "docs/*.md" in _pyproject()["tool"]["setuptools"]["package-data"]["dlradiomics"]


def test_every_dependency_range_admits_its_locked_version():
    project = _pyproject()["project"]
    pins = _lock()
    requirements = [Requirement(text) for text in project["dependencies"] + project["optional-dependencies"]["dev"]]
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name]), f"{requirement} does not admit the locked {pins[name]}"
        assert "==" not in str(requirement.specifier), f"{requirement}: pyproject holds ranges, the lock holds pins"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    python = project["requires-python"]
    assert Requirement(f"python{python}").specifier.contains(f"{sys.version_info.major}.{sys.version_info.minor}")


def test_the_readme_documents_every_loader_with_commands_that_work_from_any_folder():
    manifest_group = typer.main.get_command(app).commands["manifest"]
    loaders = sorted(set(manifest_group.commands) - {"check"})
    assert loaders == ["breastdm", "bus-bra", "busi", "mini-mias"]
    for loader in loaders:
        assert re.search(rf"dlradiomics manifest {loader} \"\$DATA/", README), loader
    assert "../shared" not in README


def test_embed_gradcam_and_studies_share_one_default_backbone():
    assert DEFAULT_BACKBONE == "efficientnet_lite0"
    assert DeepSettings().backbone == DEFAULT_BACKBONE
    for command in (embed, gradcam):
        assert inspect.signature(command).parameters["backbone"].default.default == DEFAULT_BACKBONE


def test_latest_points_at_the_newest_finished_run(tmp_path):
    first = create_run_folder(tmp_path)
    point_latest_at(first)
    second = create_run_folder(tmp_path)
    link = point_latest_at(second)
    assert link == tmp_path / LATEST_LINK
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()  # the output folder can move
    assert link.resolve() == second.root.resolve()
    assert sorted(path.name for path in tmp_path.iterdir()) == [LATEST_LINK, "runs"]  # nothing staged is left
    assert sorted((tmp_path / "runs").iterdir()) == sorted([first.root, second.root])  # runs/ holds runs only


def test_latest_is_a_file_where_links_are_unavailable(tmp_path, monkeypatch):
    def no_links(self, target, target_is_directory=False):
        raise OSError("symbolic links are not supported here")

    monkeypatch.setattr(Path, "symlink_to", no_links)
    run = create_run_folder(tmp_path)
    written = point_latest_at(run)
    assert written == tmp_path / LATEST_FILE
    assert (tmp_path / written.read_text(encoding="utf-8").strip()).resolve() == run.root.resolve()


@pytest.mark.parametrize("command", ["serve", "docs", "predict"])
def test_the_commands_of_the_readme_exist(command):
    assert CliRunner().invoke(app, [command, "--help"]).exit_code == 0

"""bench/study_bus_bra.py's default grid is what its feature tables support: the paper's 35 imaging configurations."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dlradiomics.evaluation.configurations import grid_configurations
from dlradiomics.models import CLASSIFIERS, FUSIONS

BENCH = Path(__file__).resolve().parents[1] / "bench" / "study_bus_bra.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("study_bus_bra", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_default_grid_runs_every_configuration_on_radiomic_and_deep_tables():
    arguments = load_bench().build_parser().parse_args([])
    assert arguments.sources == ["radiomic", "deep", "dlr"]
    to_run, _ = grid_configurations(arguments.sources, [("US",)], arguments.fusions, arguments.classifiers)
    # the bench computes radiomic and deep tables only: no default configuration may need another block
    assert all(set(configuration.kinds) <= {"radiomic", "deep"} for configuration in to_run)
    assert len(to_run) == 35 and set(arguments.classifiers) == set(CLASSIFIERS) and arguments.fusions == list(FUSIONS)


def test_its_help_says_which_sources_and_where_bi_rads_is_modelled():
    help_text = " ".join(load_bench().build_parser().format_help().split())
    assert "default: radiomic deep dlr, the paper's imaging sources" in help_text
    assert "bench/beat_radiologist.py" in help_text

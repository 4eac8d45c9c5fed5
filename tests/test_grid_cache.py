"""The grid and its canary kept in the store: read back only for the same inputs and the same code."""

from __future__ import annotations

import pandas as pd
from evaluation_data import make_feature_tables

from dlradiomics.schema import FAILURE_COLUMNS
from dlradiomics.store import FeatureStore
from dlradiomics.study.features import FeatureTables
from dlradiomics.study.settings import StudySettings
from dlradiomics.study.stages import run_grid_and_canary_cached


def test_a_cached_grid_is_read_back_only_by_the_same_code(tmp_path, monkeypatch):
    settings = StudySettings.from_mapping({
        "cohort": {"manifest": "m.csv"}, "feature_sources": ["radiomic"], "fusion": ["single"],
        "classifiers": ["logistic"], "cv": {"outer_folds": 3, "inner_folds": 2, "seed": 5},
        "report": {"canary": False, "bootstrap": 20},
    })
    tables = make_feature_tables(n_patients=30, modalities=("US",), seed=3)
    features = FeatureTables(tables={"radiomic": tables["radiomic"]}, failures=pd.DataFrame(columns=FAILURE_COLUMNS),
                             cache_counts={})
    store = FeatureStore(tmp_path / "store")

    def grid_cached() -> bool:
        return run_grid_and_canary_cached(settings, features, tables["radiomic"], store).grid_cached

    assert not grid_cached() and grid_cached()
    # Edited code (or another library version) may answer differently: the grid runs again.
    monkeypatch.setattr("dlradiomics.study.stages.package_source_fingerprint", lambda: "another version")
    assert not grid_cached()

"""`dlradiomics embed` and `dlradiomics gradcam` on a small generated manifest."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dlradiomics.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from test_deep_embeddings import _table  # noqa: E402  (the same small generated cohort)
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _manifest(tmp_path) -> Path:
    table = _table(tmp_path, n_rois=4)
    path = tmp_path / "manifest.csv"
    table[["patient_id", "modality", "image", "mask", "label"]].to_csv(path, index=False)
    return path


def test_embed_writes_one_row_per_roi_and_reuses_the_store(tmp_path):
    manifest = _manifest(tmp_path)
    runner = CliRunner()
    arguments = ["embed", str(manifest), "--backbone", "efficientnet_lite0", "--weights", "none",
                 "--out", str(tmp_path / "out"), "--save-crops"]
    first = runner.invoke(app, arguments)
    assert first.exit_code == 0, first.output
    table = pd.read_parquet(tmp_path / "out" / "deep_efficientnet_lite0.parquet")
    assert table.shape == (4, 6 + 1280)
    assert table["patient_id"].tolist() == ["P0", "P0", "P1", "P1"]
    assert len(list((tmp_path / "out" / "crops").glob("*.png"))) == 4
    stored = sorted((tmp_path / "out" / "store").rglob("*.parquet"))
    second = runner.invoke(app, arguments)
    assert second.exit_code == 0, second.output
    assert sorted((tmp_path / "out" / "store").rglob("*.parquet")) == stored
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "deep_efficientnet_lite0.parquet"), table)


def test_embed_reports_an_unknown_backbone_as_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["embed", str(_manifest(tmp_path)), "--backbone", "alexnet",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "alexnet" in result.output


def test_gradcam_trains_a_head_saves_it_and_reuses_it(tmp_path):
    manifest = _manifest(tmp_path)
    runner = CliRunner()
    out = tmp_path / "cam"
    common = ["gradcam", str(manifest), "--backbone", "efficientnet_lite0", "--weights", "imagenet", "--limit", "2"]
    trained = runner.invoke(app, common + ["--out", str(out), "--epochs", "2"])
    assert trained.exit_code == 0, trained.output
    report = pd.read_csv(out / "gradcam.csv")
    assert len(report) == 2 and report["error"].isna().all()
    assert report["lesion_mass_fraction"].between(0, 1).all()
    assert all(Path(path).exists() for path in report["overlay"])

    reused = runner.invoke(app, common + ["--out", str(tmp_path / "again"), "--head", str(out / "head.skops")])
    assert reused.exit_code == 0, reused.output
    again = pd.read_csv(tmp_path / "again" / "gradcam.csv")
    pd.testing.assert_series_equal(again["probability"], report["probability"])

"""HTML report: self-contained (no external links, every embedded PNG decodes) and complete."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dlradiomics.report.figures import (calibration_figure, confusion_figure, decision_curve_figure,
                                        roc_figure, save_figure)
from dlradiomics.report.html import ReportFigure, ReportSection, ReportTable, write_report


def _predictions(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.arange(40) % 2
    frames = []
    for configuration, signal in (("US radiomic svm", 2.0), ("US deep knn", 0.5)):
        score = rng.normal(size=40) + signal * labels
        frames.append(pd.DataFrame({"configuration": configuration, "y_true": labels,
                                    "prob": 1 / (1 + np.exp(-score))}))
    return pd.concat(frames, ignore_index=True)


def test_report_is_self_contained_and_images_decode(tmp_path):
    predictions = _predictions()
    configurations = ["US radiomic svm", "US deep knn"]
    figures_dir = tmp_path / "figures"
    figures_dir.mkdir()
    drawn = {
        "roc": roc_figure(predictions, configurations, "single modality"),
        "dca": decision_curve_figure(predictions, configurations),
        "calibration": calibration_figure(predictions, configurations),
        "confusion": confusion_figure([0, 1, 1, 0], [0, 1, 0, 0], "chosen model"),
    }
    for name, figure in drawn.items():
        save_figure(figure, figures_dir / f"{name}.png")
    results = pd.DataFrame({"configuration": configurations, "auc": [0.9, 0.6]})
    sections = [
        ReportSection("Cohort", paragraphs=["40 patients <script>alert(1)</script>"]),
        ReportSection("Results", tables=[ReportTable("results_long", "All configurations", results)],
                      figures=[ReportFigure(name, figures_dir / f"{name}.png") for name in drawn]),
    ]
    report = write_report(tmp_path, title="Test study", opening="This cohort is synthetic.", sections=sections)
    html = report.read_text()

    external = [link for link in re.findall(r'(?:src|href)="([^"]*)"', html)
                if not link.startswith(("data:", "#"))]
    assert external == []
    assert "<link" not in html and "@import" not in html
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == len(drawn)
    for data in embedded:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as image:
            image.verify()
    assert html.index("This cohort is synthetic.") < html.index("Cohort</h2>")
    assert "<script>alert(1)</script>" not in html  # paragraphs are escaped
    assert pd.read_csv(tmp_path / "tables" / "results_long.csv").equals(results)


def test_a_figure_that_is_not_png_is_an_error(tmp_path):
    fake = tmp_path / "figure.png"
    fake.write_text("not an image")
    with pytest.raises(ValueError, match="not a PNG"):
        write_report(tmp_path, title="t", opening="o",
                     sections=[ReportSection("s", figures=[ReportFigure("fake", fake)])])


def test_roc_figure_names_a_missing_configuration():
    with pytest.raises(ValueError, match="nope"):
        roc_figure(_predictions(), ["nope"], "t")

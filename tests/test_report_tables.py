"""Report tables: counts as integers in HTML, CSV and LaTeX; long text wraps; links in the checklist; the headline first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlradiomics.report.checklist import TRIPOD_AI_ITEMS, ChecklistAnswer, fill_checklist
from dlradiomics.report.html import ReportSection, ReportTable, with_integer_counts, write_report


def test_counts_are_integers_and_metrics_keep_their_decimals(tmp_path):
    frame = pd.DataFrame({"configuration": ["a", "b", "c"], "n_patients": [40.0, np.nan, 38.0],
                          "auc": [1.0, 0.5, 0.75], "malignant": [1.0, 0.0, 1.0], "folds": [5.0, 5.0, 5.0]})
    converted = with_integer_counts(frame)
    assert str(converted["n_patients"].dtype) == "Int64" and str(converted["malignant"].dtype) == "Int64"
    assert converted["auc"].dtype == float
    write_report(tmp_path, title="t", opening="", sections=[ReportSection("Results", tables=[
        ReportTable("results_long", "All", frame)])])
    html = (tmp_path / "report.html").read_text()
    assert "<td class=num>40</td>" in html and "40.000" not in html and "<td class=num>1.000</td>" in html
    assert (tmp_path / "tables" / "results_long.csv").read_text().splitlines()[1] == "a,40,1.0,1,5"
    latex = (tmp_path / "tables" / "results_long.tex").read_text()
    assert "n\\_patients" in latex and "\\begin{tabular}" in latex and " 40 " in latex and "1.000" in latex


def test_long_text_cells_wrap_instead_of_running_off_the_page(tmp_path):
    note = "could not run: " + "a very long explanation " * 20
    write_report(tmp_path, title="t", opening="", sections=[ReportSection("Results", tables=[
        ReportTable("notes", "Notes", pd.DataFrame({"note": [note]}))])])
    html = (tmp_path / "report.html").read_text()
    assert "overflow-wrap: break-word" in html and "max-width: 26em" in html
    assert "<td>could not run: a very long" in html  # text cells are not kept on one line (numbers are)


def test_the_headline_comes_first_and_problems_are_marked(tmp_path):
    write_report(tmp_path, title="t", opening="A synthetic cohort.",
                 sections=[ReportSection("Cohort", paragraphs=["x"])],
                 headline=[("Chosen model", "radiomic | US | single | logistic"),
                           ("Leakage canary", "PROBLEM: AUC 0.31")], problems=["Leakage canary"])
    html = (tmp_path / "report.html").read_text()
    assert html.index("Chosen model</dt>") < html.index("A synthetic cohort.") < html.index("Cohort</h2>")
    assert '<dt class="problem">Leakage canary</dt>' in html


def test_every_tripod_ai_item_is_listed_and_unanswered_ones_say_so(tmp_path):
    table = fill_checklist({"20b": ChecklistAnswer("answered", "cohort-and-data-quality", "Table 1")})
    assert list(table["item"]) == [item.item for item in TRIPOD_AI_ITEMS] and len(table) == 52
    assert table.set_index("item").loc["20b", "where"] == "#cohort-and-data-quality"
    assert table.set_index("item").loc["17", "status"] == "not reported"
    write_report(tmp_path, title="t", opening="", sections=[ReportSection("Reporting checklist", tables=[
        ReportTable("tripod", "TRIPOD+AI", table, link_column="where")])])
    html = (tmp_path / "report.html").read_text()
    assert '<a href="#cohort-and-data-quality">#cohort-and-data-quality</a>' in html

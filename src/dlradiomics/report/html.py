"""One self-contained HTML report: inline CSS, images embedded as base64 PNG, readable offline.

Tables are also written as `tables/<name>.csv` and `tables/<name>.tex` (for a paper) and figures
stay as `figures/*.png` beside it. Counts print as integers ("40", not "40.000") in every format,
and long text cells wrap instead of running off the page.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from dlradiomics.io.atomic import write_csv_atomic, write_text_atomic

REPORT_FILE = "report.html"
MAX_ROWS_SHOWN = 400  # the long results table can be huge; the CSV keeps every row


@dataclass
class ReportTable:
    """A table of the report.

    Args:
        name: file stem of its CSV under `tables/` (letters, digits, `_`, `-`).
        caption: heading shown above it.
        frame: the data.
        link_column: a column of in-report links (``#anchor``), shown as clickable links.
    """

    name: str
    caption: str
    frame: pd.DataFrame
    link_column: str | None = None


@dataclass
class ReportFigure:
    """A PNG figure of the report.

    Args:
        caption: text under the image.
        path: the PNG file (embedded into the HTML).
    """

    caption: str
    path: Path


@dataclass
class ReportSection:
    """One section: heading, paragraphs, tables, figures.

    Args:
        heading: section heading.
        paragraphs: plain-text paragraphs (escaped in the HTML).
        tables: tables shown, in order.
        figures: figures shown, in order.
        small_figures: show figures as thumbnails (e.g. a Grad-CAM gallery).
    """

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[ReportTable] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)
    small_figures: bool = False


def section_anchor(heading: str) -> str:
    """The id of a section in the HTML (``"Chosen model"`` -> ``"chosen-model"``), for links to it."""
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


# Whole-number columns whose name says they count something print as integers even when every
# value is 0 or 1 (a metric column of whole numbers, such as an AUC of 1.0, keeps its decimals).
_COUNT_NAME = re.compile(r"(^n_|^n$|count|patients|images|rows|events|folds|selected_in|^malignant$|^benign$)")


def with_integer_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns of whole numbers that are counts, as nullable integers (blank where missing).

    A column is taken for a count when every value is a whole number and either its name says so
    or some value exceeds 1 (no probability or metric does).
    """
    converted = frame.copy()
    for column in converted.columns:
        values = converted[column]
        if not pd.api.types.is_float_dtype(values):
            continue
        present = values.dropna()
        if present.empty or not (present == present.round()).all() or not present.abs().le(2**53).all():
            continue
        if _COUNT_NAME.search(str(column).lower()) or present.abs().max() > 1:
            converted[column] = values.astype("Int64")
    return converted


def _png_base64(path: Path) -> str:
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"{path}: not a PNG file; the report embeds PNG images only")
    return base64.b64encode(data).decode("ascii")


def _cell(value, link: bool) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.3f}"
    text = escape(str(value))
    if link and re.fullmatch(r"#[a-z0-9-]+", str(value)):
        return f'<a href="{text}">{text}</a>'
    return text


def _table_html(frame: pd.DataFrame, link_column: str | None = None) -> str:
    """An HTML table: numbers right-aligned with 3 decimals (counts as integers), text left-aligned and
    wrapping at spaces, headers wrapping at underscores, links in `link_column`."""
    shown = frame.head(MAX_ROWS_SHOWN)
    numeric = [pd.api.types.is_numeric_dtype(shown[column]) and not pd.api.types.is_bool_dtype(shown[column])
               for column in shown.columns]
    header = "".join(f'<th{" class=num" if is_number else ""}>{escape(str(column)).replace("_", "_<wbr>")}</th>'
                     for column, is_number in zip(shown.columns, numeric))
    body = []
    for values in shown.itertuples(index=False, name=None):
        cells = "".join(f'<td{" class=num" if is_number else ""}>{_cell(value, column == link_column)}</td>'
                        for value, column, is_number in zip(values, shown.columns, numeric))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _table_latex(frame: pd.DataFrame, caption: str, name: str) -> str:
    """A LaTeX table (booktabs) of a report table: special characters escaped, 3 decimals."""
    return frame.to_latex(index=False, float_format=lambda value: f"{value:.3f}", na_rep="", escape=True,
                          caption=caption, label=f"tab:{name}", longtable=len(frame) > 40)


def write_report(out_dir: str | Path, *, title: str, opening: str, sections: list[ReportSection],
                 footer: str = "", headline: Sequence[tuple[str, str]] = (), problems: Sequence[str] = (),
                 headline_figure: ReportFigure | None = None) -> Path:
    """Write `report.html` with `tables/*.csv` and `tables/*.tex` into a folder.

    Args:
        out_dir: the report folder (created if needed).
        title: report title.
        opening: a caveat a reader must see first (what the cohort is), shown under the headline.
        sections: the sections, in order.
        footer: small print at the end (versions, run folder).
        headline: (label, text) pairs shown first, in a box: the answer of the study.
        problems: labels of headline items to show as problems (in red).
        headline_figure: a figure shown right under the headline (e.g. the forest plot).

    Returns:
        The path of `report.html`.

    Raises:
        ValueError: when a table name is not a safe file stem, or a figure is not a PNG.
    """
    out_dir = Path(out_dir)
    tables_dir = out_dir / "tables"
    tables_dir.mkdir(parents=True, exist_ok=True)
    rendered_sections = []
    for section in sections:
        rendered_tables = []
        for table in section.tables:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", table.name):
                raise ValueError(f"table name {table.name!r} must use letters, digits, '_' or '-' only")
            frame = with_integer_counts(table.frame)
            write_csv_atomic(frame, tables_dir / f"{table.name}.csv")
            write_text_atomic(tables_dir / f"{table.name}.tex", _table_latex(frame, table.caption, table.name))
            rendered_tables.append({"name": table.name, "caption": table.caption, "html": _table_html(frame, table.link_column)})
        rendered_sections.append({
            "heading": section.heading,
            "anchor": section_anchor(section.heading),
            "paragraphs": section.paragraphs,
            "tables": rendered_tables,
            "figures": [{"caption": figure.caption, "data": _png_base64(figure.path)} for figure in section.figures],
            "small_figures": section.small_figures,
        })
    environment = Environment(loader=PackageLoader("dlradiomics.report", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    figure = ({"caption": headline_figure.caption, "data": _png_base64(headline_figure.path)}
              if headline_figure is not None else None)
    html = environment.get_template("report.html.j2").render(
        title=title, opening=opening, sections=rendered_sections, footer=footer,
        headline=[{"label": label, "text": text, "problem": label in problems} for label, text in headline],
        headline_figure=figure)
    return write_text_atomic(out_dir / REPORT_FILE, html)

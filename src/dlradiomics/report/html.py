"""One self-contained HTML report: inline CSS, images embedded as base64 PNG, readable offline.

Tables are also written as `tables/<name>.csv` and figures stay as `figures/*.png` beside it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

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
    """

    name: str
    caption: str
    frame: pd.DataFrame


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


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def _png_base64(path: Path) -> str:
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"{path}: not a PNG file; the report embeds PNG images only")
    return base64.b64encode(data).decode("ascii")


def _table_html(frame: pd.DataFrame) -> str:
    shown = frame.head(MAX_ROWS_SHOWN)
    return shown.to_html(index=False, float_format=lambda value: f"{value:.3f}", na_rep="", border=0)


def write_report(out_dir: str | Path, *, title: str, opening: str, sections: list[ReportSection],
                 footer: str = "") -> Path:
    """Write `report.html` and `tables/*.csv` into a folder.

    Args:
        out_dir: the report folder (created if needed).
        title: report title.
        opening: the first sentence(s): what the cohort is and any caveat a reader must see first.
        sections: the sections, in order.
        footer: small print at the end (versions, run folder).

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
            write_csv_atomic(table.frame, tables_dir / f"{table.name}.csv")
            rendered_tables.append({"name": table.name, "caption": table.caption, "html": _table_html(table.frame)})
        rendered_sections.append({
            "heading": section.heading,
            "anchor": _anchor(section.heading),
            "paragraphs": section.paragraphs,
            "tables": rendered_tables,
            "figures": [{"caption": figure.caption, "data": _png_base64(figure.path)} for figure in section.figures],
            "small_figures": section.small_figures,
        })
    environment = Environment(loader=PackageLoader("dlradiomics.report", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    html = environment.get_template("report.html.j2").render(
        title=title, opening=opening, sections=rendered_sections, footer=footer)
    return write_text_atomic(out_dir / REPORT_FILE, html)

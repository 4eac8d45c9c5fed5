"""Reading and writing manifest files (CSV or YAML). The format: `dlradiomics docs manifest`."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pandas as pd

from dlradiomics.cohort.cohort import Cohort
from dlradiomics.cohort.columns import KNOWN_COLUMNS, PARSE_PROBLEM_COLUMN, PATH_COLUMNS, REQUIRED_COLUMNS
from dlradiomics.cohort.labels import LABEL_NAMES
from dlradiomics.cohort.problems import ManifestError, ManifestProblem
from dlradiomics.cohort.validation import ReadErrors, column_problems, normalise_columns
from dlradiomics.io.atomic import write_csv_atomic, write_yaml_atomic
from dlradiomics.io.safe_yaml import YamlInputError, load_yaml_text, read_text_file

YAML_SUFFIXES = (".yaml", ".yml")


def read_manifest(path: str | os.PathLike[str], *, check_images: bool = False,
                  read_errors: ReadErrors | None = None) -> Cohort:
    """Read and validate a manifest file.

    Args:
        path: a ``.csv`` file, or a ``.yaml`` / ``.yml`` file holding a list of rows or
            ``{rows: [...]}``. Relative image and mask paths are taken from this file's folder.
        check_images: also open every image and mask, reporting unreadable files and
            wrong-size or empty masks as problems (slower).
        read_errors: how ``check_images`` reads rows (default `load_roi`); a
            `dlradiomics.cohort.qa.QaCache`'s ``read_errors`` answers from QA findings cached by
            content, so the QA that follows reads nothing again.

    Returns:
        The cohort: good rows in ``table``, the rest in ``rejected`` and ``problems``.

    Raises:
        ManifestError: the file itself cannot be read or is not a table (missing, a folder,
            empty, binary, not UTF-8, malformed CSV or YAML, an alias bomb).
    """
    path = Path(path)
    frame = read_manifest_table(path)
    return Cohort.from_table(frame, path.parent, check_images=check_images, source=str(path),
                             read_errors=read_errors)


def read_manifest_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The rows of a manifest file as written (text cells), before any validation.

    CSV cells are read as text (patient "007" stays "007"). A CSV row with more cells than the
    header does not stop the file: it is kept, and validation reports it as a problem of its row.

    Args:
        path: a ``.csv``, ``.yaml`` or ``.yml`` manifest.

    Raises:
        ManifestError: the file is missing, a folder, empty, binary, not UTF-8, not a table,
            malformed YAML or an alias bomb, or has a header but no rows.
    """
    path = Path(path)
    if not path.exists():
        raise _file_error(path, "manifest file not found")
    try:
        text = read_text_file(path, what="manifest")
    except YamlInputError as error:
        raise _file_error(path, error.problem + (f"; {error.hint}" if error.hint else "")) from None
    if not text.strip():
        raise _file_error(path, "the manifest is empty; its first line must name the columns "
                                f"({','.join(REQUIRED_COLUMNS)}) and each further line is one image")
    if path.suffix.lower() in YAML_SUFFIXES:
        frame = _read_yaml(text, path)
    else:
        frame = _read_csv(text, path)
    if frame.empty:
        header_problems = column_problems(normalise_columns(frame))
        # One line and no header: the line was taken as the header, and its problem is the header.
        raise ManifestError(str(path), header_problems) if header_problems and "header" in \
            header_problems[0].message else _file_error(path, "the manifest names its columns but has no rows")
    return frame


def _file_error(path: Path, message: str) -> ManifestError:
    return ManifestError(str(path), [ManifestProblem(None, None, "", message)])


def _read_csv(text: str, path: Path) -> pd.DataFrame:
    _refuse_repeated_columns(text, path)
    # Everything as text: patient "007" must not become 7. Numeric extras are restored later.
    options = {"dtype": str, "keep_default_na": False, "skipinitialspace": True}
    try:
        return pd.read_csv(io.StringIO(text), **options)
    except pd.errors.ParserError:
        # Typically a row with more cells than the header (an unquoted comma in a path): the
        # rows are read one by one and each such row becomes a problem of its own.
        return _read_csv_row_by_row(text, path)
    except (ValueError, csv.Error) as error:
        raise _file_error(path, f"cannot parse the CSV: {error}") from None


def _refuse_repeated_columns(text: str, path: Path) -> None:
    """pandas renames a repeated column (``label``, ``label.1``) and reads on: two label columns must be an error."""
    first_line = next((line for line in io.StringIO(text) if line.strip()), "")
    try:
        header = next(csv.reader([first_line], skipinitialspace=True))
    except (csv.Error, StopIteration):
        return
    names = [name.strip().lower() for name in header]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise ManifestError(str(path), [ManifestProblem(None, None, name, "column appears more than once in the header; "
                                                        "keep one") for name in repeated])


def _read_csv_row_by_row(text: str, path: Path) -> pd.DataFrame:
    try:
        records = [record for record in csv.reader(io.StringIO(text), skipinitialspace=True) if record]
    except csv.Error as error:
        raise _file_error(path, f"cannot parse the CSV: {error}") from None
    header, rows = records[0], records[1:]
    problems = []
    for record in rows:
        if len(record) > len(header):
            problems.append(f"the row has {len(record)} cells but the header names {len(header)} columns "
                            "(a comma inside an unquoted value? put such values in double quotes)")
        else:
            problems.append("")
    padded = [(record + [""] * len(header))[: len(header)] for record in rows]
    frame = pd.DataFrame(padded, columns=header, dtype=str)
    frame[PARSE_PROBLEM_COLUMN] = problems
    return frame


def _read_yaml(text: str, path: Path) -> pd.DataFrame:
    try:
        document = load_yaml_text(text, source=str(path))
    except YamlInputError as error:
        raise _file_error(path, error.problem + (f"; {error.hint}" if error.hint else "")) from None
    rows = document.get("rows") if isinstance(document, dict) else document
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise _file_error(path, "a YAML manifest must be a list of rows (mappings) or {rows: [...]}")
    if not rows:
        raise _file_error(path, "the YAML manifest has no rows")
    return pd.DataFrame.from_records(rows)


def write_manifest(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a manifest table as CSV or YAML (chosen by the suffix).

    Paths inside the manifest's folder are written relative to it, so that the folder can be
    moved; ``roi_id`` is left out because it is derived on reading; labels are written as
    ``benign`` / ``malignant``.

    Args:
        table: a cohort table or a loader's output.
        path: the ``.csv``, ``.yaml`` or ``.yml`` file to write; its folder is created.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = Path(os.path.abspath(path.parent))
    frame = table.drop(columns=["roi_id"], errors="ignore").copy()
    for column in PATH_COLUMNS:
        if column in frame:
            frame[column] = [_portable_path(value, root) for value in frame[column]]
    if "label" in frame:
        frame["label"] = [LABEL_NAMES.get(value, value) if not isinstance(value, str) else value for value in frame["label"]]
    known = [c for c in KNOWN_COLUMNS if c in frame]
    frame = frame[known + [c for c in frame.columns if c not in known]]
    # Optional columns that no row uses (view, slice ...) would only add empty cells.
    frame = frame.dropna(axis=1, how="all")
    if path.suffix.lower() in YAML_SUFFIXES:
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        write_yaml_atomic(path, {"rows": [_plain(record) for record in records]})
    else:
        write_csv_atomic(frame, path)
    return path


def _portable_path(value, root: Path) -> str:
    text = str(value)
    absolute = Path(os.path.abspath(text))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return text


def _plain(record: dict) -> dict:
    """Python scalars for YAML (numpy integers and floats are not representable by safe_dump)."""
    return {key: value.item() if hasattr(value, "item") else value for key, value in record.items()}

"""Reading and writing manifest files (CSV or YAML). The format is documented in docs/manifest.md."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dlradiomics.cohort.cohort import Cohort
from dlradiomics.cohort.columns import KNOWN_COLUMNS, PATH_COLUMNS
from dlradiomics.cohort.labels import LABEL_NAMES
from dlradiomics.cohort.problems import ManifestError, ManifestProblem

YAML_SUFFIXES = (".yaml", ".yml")


def read_manifest(path: str | os.PathLike[str], *, check_images: bool = False) -> Cohort:
    """Read and validate a manifest file.

    Args:
        path: a ``.csv`` file, or a ``.yaml`` / ``.yml`` file holding a list of rows or
            ``{rows: [...]}``. Relative image and mask paths are taken from this file's folder.
        check_images: also open every image and mask, reporting unreadable files and
            wrong-size or empty masks as problems (slower).

    Returns:
        The cohort: good rows in ``table``, the rest in ``rejected`` and ``problems``.

    Raises:
        ManifestError: the file itself cannot be read or is not a table.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(str(path), [ManifestProblem(None, None, "", "manifest file not found")])
    try:
        frame = _read_yaml(path) if path.suffix.lower() in YAML_SUFFIXES else _read_csv(path)
    except ManifestError:
        raise
    except Exception as exc:  # pandas and PyYAML raise many types for a malformed file
        raise ManifestError(str(path), [ManifestProblem(None, None, "", f"cannot parse: {exc}")]) from exc
    return Cohort.from_table(frame, path.parent, check_images=check_images, source=str(path))


def _read_csv(path: Path) -> pd.DataFrame:
    # Everything as text: patient "007" must not become 7. Numeric extras are restored later.
    # utf-8-sig: spreadsheet programs often start a CSV with a byte-order mark.
    return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")


def _read_yaml(path: Path) -> pd.DataFrame:
    import yaml

    with open(path, encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    rows = document.get("rows") if isinstance(document, dict) else document
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ManifestError(
            str(path), [ManifestProblem(None, None, "", "YAML manifest must be a list of rows or {rows: [...]}")]
        )
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
        import yaml

        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        with open(path, "w", encoding="utf-8") as stream:
            yaml.safe_dump({"rows": [_plain(record) for record in records]}, stream, sort_keys=False)
    else:
        frame.to_csv(path, index=False)
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

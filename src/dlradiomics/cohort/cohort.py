"""`Cohort`: the validated manifest of a study: its good rows, rejected rows and problems."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dlradiomics.cohort.problems import ManifestError, ManifestProblem
from dlradiomics.cohort.validation import ReadErrors, validate_rows
from dlradiomics.io import RoiImage, load_roi


@dataclass
class Cohort:
    """The images of a study, one row per image, after validation.

    Attributes:
        table: good rows: ``roi_id, patient_id, modality, image, mask, label, view, group,
            mask_label, slice`` (+ ``fold`` and any extra columns). Paths are absolute and
            ``label`` is the integer 0 (benign) / 1 (malignant).
        problems: every problem found, each naming its row, patient and column.
        rejected: the rows excluded by a problem, as given, with ``row`` and ``problems`` columns.
        root: folder that relative paths were resolved against.
        source: where the manifest came from (a file path or a description).
        source_rows: the 1-based manifest row of each row of ``table`` (same order), so that a
            good row the study does not use can be named by its row; empty when unknown.
    """

    table: pd.DataFrame
    problems: list[ManifestProblem] = field(default_factory=list)
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)
    root: Path = Path(".")
    source: str = "<table>"
    source_rows: list[int] = field(default_factory=list)

    @classmethod
    def from_table(
        cls,
        frame: pd.DataFrame,
        root: str | os.PathLike[str] = ".",
        *,
        check_images: bool = False,
        source: str = "<table>",
        read_errors: ReadErrors | None = None,
    ) -> "Cohort":
        """Validate a manifest-shaped DataFrame (for example a loader's output) into a cohort.

        Args:
            frame: one row per image with at least ``patient_id, modality, image, mask, label``.
            root: folder that relative ``image`` / ``mask`` paths are resolved against.
            check_images: also open every image and mask (catches corrupt files, wrong-size or
                empty masks); slower.
            source: name used in error reports.
            read_errors: how ``check_images`` reads rows (default `load_roi`; see
                `dlradiomics.cohort.validation.validate_rows`).

        Returns:
            The cohort; check ``problems`` or call :meth:`raise_for_problems`.
        """
        root_path = Path(os.path.abspath(os.path.expanduser(root)))
        result = validate_rows(frame, root_path, check_images=check_images, read_errors=read_errors)
        return cls(table=result.table, problems=result.problems, rejected=result.rejected, root=root_path, source=source,
                   source_rows=result.rows)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def n_patients(self) -> int:
        """Number of distinct patients among the good rows."""
        return int(self.table["patient_id"].nunique())

    @property
    def modalities(self) -> list[str]:
        """The modalities present, sorted."""
        return sorted(self.table["modality"].unique())

    def raise_for_problems(self) -> None:
        """Raise :class:`ManifestError` listing every problem, if there is any.

        Raises:
            ManifestError: the multi-line report of all problems.
        """
        if self.problems:
            raise ManifestError(self.source, self.problems)

    def raise_for_file_problems(self) -> None:
        """Raise :class:`ManifestError` for problems of the whole file (a missing column, say): no row is usable.

        Problems of single rows are left to the caller, which reports them and goes on with the rest.
        """
        whole_file = [problem for problem in self.problems if problem.row is None]
        if whole_file:
            raise ManifestError(self.source, whole_file)

    def load_roi(self, roi_id: str) -> RoiImage:
        """Read the image and mask of one row.

        Args:
            roi_id: the row's ``roi_id``.

        Raises:
            KeyError: no such ``roi_id``.
            ImageReadError: the files cannot be used.
        """
        matches = self.table.index[self.table["roi_id"] == roi_id]
        if len(matches) == 0:
            raise KeyError(f"roi_id {roi_id!r} is not in the cohort {self.source}")
        return load_row_roi(self.table.loc[matches[0]])


def load_row_roi(row: pd.Series) -> RoiImage:
    """Read the ROI that one cohort row describes (its ``mask_label`` and ``slice`` included).

    Args:
        row: a row of :attr:`Cohort.table`.
    """
    mask_label = row.get("mask_label")
    slice_index = row.get("slice")
    return load_roi(
        row["image"],
        row["mask"],
        mask_label=None if mask_label is None or pd.isna(mask_label) else int(mask_label),
        slice_index=None if slice_index is None or pd.isna(slice_index) else int(slice_index),
    )


def cohort_table(cohort: Cohort | pd.DataFrame, required_columns: Sequence[str]) -> pd.DataFrame:
    """The rows of a `Cohort` (its ``table``) or of a cohort-shaped DataFrame, indexed 0..n-1.

    Radiomic extraction and deep embedding both take either form, and both must fail on a missing
    column before any file is read or hashed.

    Args:
        cohort: a :class:`Cohort` or a DataFrame with the cohort's columns.
        required_columns: columns the caller reads.

    Raises:
        TypeError: ``cohort`` is neither.
        ValueError: a required column is missing.
    """
    table = cohort.table if hasattr(cohort, "table") else cohort
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"cohort must be a Cohort or a pandas DataFrame, got {type(cohort).__name__}")
    missing = [column for column in required_columns if column not in table.columns]
    if missing:
        raise ValueError(f"the cohort table lacks the column(s) {missing}; it needs {list(required_columns)}")
    return table.reset_index(drop=True)

"""Data QA: per-case checks of every image and mask, and duplicate images across patients.

:func:`run_qa` never stops on a bad case: whatever goes wrong with one row is recorded in that
row's ``flags`` and ``error`` and the next row is checked. Exact duplicates are found by the
SHA-256 of the pixel data (so a PNG and its lossless TIFF copy match), near-duplicates by a
perceptual hash (ImageHash pHash) within a Hamming distance. Flags are for review, not automatic
exclusion: on mammograms the breast outline dominates the pHash, so two women's films can land
within a few bits (mini-MIAS mdb030 / mdb080 are 4 bits apart), while neighbouring MRI slices of
one patient filed under two ids are 0-4 bits apart.
"""

from __future__ import annotations

import pandas as pd

from dlradiomics.cohort.cohort import Cohort
from dlradiomics.cohort.qa.cache import QaCache
from dlradiomics.cohort.qa.checks import QA_COLUMNS, check_rows
from dlradiomics.cohort.qa.duplicates import duplicate_pairs, flag_duplicates
from dlradiomics.cohort.qa.flags import QA_FLAGS, flag_column
from dlradiomics.cohort.qa.summary import QaSummary, write_qa_report

__all__ = ["QA_FLAGS", "QaCache", "QaSummary", "flag_column", "run_qa", "write_qa_report"]


def run_qa(
    cohort: Cohort | pd.DataFrame,
    *,
    tiny_mask_pixels: int = 32,
    near_duplicate_distance: int = 4,
    n_jobs: int = 1,
    progress: bool = False,
    cache: QaCache | None = None,
) -> tuple[pd.DataFrame, QaSummary]:
    """Check every row of a cohort.

    Args:
        cohort: the validated cohort (its rejected rows are reported, not checked), or a
            manifest-shaped table, validated first with ``Cohort.from_table``.
        tiny_mask_pixels: a lesion with fewer pixels is flagged ``tiny_mask``.
        near_duplicate_distance: the largest Hamming distance (of 64 pHash bits) at which two
            images count as near-duplicates; 0 keeps only perceptually identical images.
        n_jobs: worker processes for the per-image checks (1 = in this process).
        progress: show the count of images checked and the time left.
        cache: per-row findings cached by content (`QaCache`, which then holds the tiny-mask
            setting, the workers and the progress display); only rows whose files, row settings or
            check changed are read. Duplicates are always found afresh.

    Returns:
        The per-row table (one row per cohort row: sizes, lesion area, components, intensity
        range, hashes, ``exact_duplicates``, ``near_duplicates``, ``flags`` (``;``-separated
        names from :data:`QA_FLAGS`) and ``error``), and the summary.
    """
    if isinstance(cohort, pd.DataFrame):
        cohort = Cohort.from_table(cohort)
    rows = cohort.table.to_dict("records")
    if cache is not None:
        tiny_mask_pixels = cache.tiny_mask_pixels
        records = cache.records(rows)
    else:
        records = check_rows(rows, tiny_mask_pixels, n_jobs, progress=progress)
    table = pd.DataFrame.from_records(records, columns=QA_COLUMNS)
    # 64-bit hashes kept as Python ints: a pandas column with gaps would turn them into lossy floats.
    table["phash"] = pd.Series([record["phash"] for record in records], dtype=object)
    pairs = duplicate_pairs(table, near_duplicate_distance)
    flag_duplicates(table, pairs)
    pairs = pairs.drop(columns=["_a", "_b"])
    counts = {flag: sum(flag in flags for flags in table["flags"]) for flag in QA_FLAGS}
    table["flags"] = table["flags"].map(";".join)
    table["phash"] = table["phash"].map(lambda value: None if value is None else f"{value:016x}")
    summary = QaSummary(
        n_rows=len(table),
        n_patients=int(table["patient_id"].nunique()),
        n_flagged=int((table["flags"] != "").sum()),
        flag_counts={flag: count for flag, count in counts.items() if count},
        duplicate_pairs=pairs,
        manifest_problems=list(cohort.problems),
        settings={"tiny_mask_pixels": tiny_mask_pixels, "near_duplicate_distance": near_duplicate_distance},
    )
    return table, summary

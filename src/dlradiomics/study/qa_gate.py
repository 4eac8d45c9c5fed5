"""The QA findings that stop a study: the same image under two patients.

A duplicate (pixel-identical) or near-duplicate (perceptual hash within the study's distance)
image filed under two patients lands on both sides of a fold split as often as not, and the
model is then tested on images it was trained on: one hostile review raised the AUC from 0.69
to 0.80 that way. Such a cohort stops the study unless the study file says
``qa: {allow_duplicates: true}``; the report then lists every pair.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dlradiomics.study.preflight import PreflightError

PAIRS_SHOWN = 10


class DuplicateImagesError(PreflightError):
    """Duplicate or near-duplicate images across patients, in a study that does not allow them."""


def duplicate_pairs_across_patients(qa_summary: Any, study_roi_ids: Any) -> pd.DataFrame:
    """The QA duplicate pairs between two different patients, both of whose images the study uses.

    Args:
        qa_summary: the ``QaSummary`` of the cohort.
        study_roi_ids: the ``roi_id`` of every row the study uses.
    """
    pairs = qa_summary.duplicate_pairs
    if pairs is None or pairs.empty:
        return pd.DataFrame(columns=["roi_a", "roi_b", "kind", "distance", "same_patient", "same_label"])
    used = set(study_roi_ids)
    keep = ~pairs["same_patient"].astype(bool) & pairs["roi_a"].isin(used) & pairs["roi_b"].isin(used)
    return pairs[keep].reset_index(drop=True)


def check_duplicates(pairs: pd.DataFrame, *, allowed: bool, distance: int) -> None:
    """Stop the study when images repeat across patients, unless the study allows it.

    Args:
        pairs: what :func:`duplicate_pairs_across_patients` gave.
        allowed: the study's ``qa.allow_duplicates``.
        distance: the near-duplicate distance used, for the message.

    Raises:
        DuplicateImagesError: naming the pairs and the two ways out.
    """
    if pairs.empty or allowed:
        return
    kinds = pairs["kind"].value_counts()
    counted = " and ".join(f"{count} {'exact' if kind == 'exact' else 'near-duplicate'}" for kind, count in kinds.items())
    shown = "; ".join(f"{pair.roi_a} = {pair.roi_b} ({pair.kind}"
                      + (f", distance {pair.distance}" if pair.kind != "exact" else "")
                      + ("" if pair.same_label else ", different labels") + ")"
                      for pair in pairs.head(PAIRS_SHOWN).itertuples())
    more = f"; and {len(pairs) - PAIRS_SHOWN} more" if len(pairs) > PAIRS_SHOWN else ""
    raise DuplicateImagesError(
        f"QA found {counted} image pair(s) under different patients (near-duplicate distance {distance}): "
        f"{shown}{more}. The same image on both sides of a fold split inflates every result. Remove one image "
        "of each pair (or give both the same patient_id if they are one patient), or, if they are truly "
        "different images, set `qa: {allow_duplicates: true}` in the study file (the report then lists every "
        "pair) or lower qa.near_duplicate_distance")

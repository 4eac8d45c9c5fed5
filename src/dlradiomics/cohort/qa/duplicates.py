"""Exact duplicates (SHA-256 of pixel data) and near-duplicates (pHash Hamming distance) across rows."""

from __future__ import annotations

import numpy as np
import pandas as pd


def duplicate_pairs(table: pd.DataFrame, max_distance: int) -> pd.DataFrame:
    """Every pair of rows with the same pixel hash (exact) or pHashes within ``max_distance`` (near).

    Args:
        table: QA table with ``pixel_sha256`` and integer ``phash`` (``None`` where unreadable).
        max_distance: the largest Hamming distance of a near-duplicate pair.

    Returns:
        ``roi_a, roi_b, kind, distance, same_patient, same_label`` plus the row positions ``_a, _b``.
    """
    pair_rows = []
    hashed = table[table["pixel_sha256"].notna()]
    # Only hashes that repeat form pairs: grouping the rest (every row of a clean cohort) costs seconds.
    hashed = hashed[hashed["pixel_sha256"].duplicated(keep=False)]
    for _, group in hashed.groupby("pixel_sha256"):
        indices = list(group.index)
        pair_rows += [(a, b, "exact", 0) for i, a in enumerate(indices) for b in indices[i + 1 :]]

    with_phash = table.index[table["phash"].map(lambda value: value is not None)].to_numpy()
    hashes = np.array([table.at[i, "phash"] for i in with_phash], dtype=np.uint64)
    sha = table["pixel_sha256"].to_numpy()
    # Blocks of rows keep the all-pairs distance matrix small for cohorts of many thousand images.
    for start in range(0, len(hashes), 1024):
        block = hashes[start : start + 1024]
        distances = np.bitwise_count(block[:, None] ^ hashes[None, :])
        for i, j in zip(*np.nonzero(distances <= max_distance)):
            a, b = with_phash[start + i], with_phash[j]
            if a < b and sha[a] != sha[b]:
                pair_rows.append((a, b, "near", int(distances[i, j])))

    frame = pd.DataFrame(pair_rows, columns=["a", "b", "kind", "distance"])
    return pd.DataFrame(
        {
            "roi_a": table.loc[frame["a"], "roi_id"].to_numpy(),
            "roi_b": table.loc[frame["b"], "roi_id"].to_numpy(),
            "kind": frame["kind"].to_numpy(),
            "distance": frame["distance"].to_numpy(dtype=int),
            "same_patient": table.loc[frame["a"], "patient_id"].to_numpy() == table.loc[frame["b"], "patient_id"].to_numpy(),
            "same_label": table.loc[frame["a"], "label"].to_numpy() == table.loc[frame["b"], "label"].to_numpy(),
            "_a": frame["a"].to_numpy(),
            "_b": frame["b"].to_numpy(),
        }
    )


def flag_duplicates(table: pd.DataFrame, pairs: pd.DataFrame) -> None:
    """Add the duplicate flags and the partner lists (``exact_duplicates``, ``near_duplicates``) to ``table``."""
    partners: dict[tuple[int, str], list[str]] = {}
    for a, b, kind, same_patient, same_label in zip(
        pairs["_a"], pairs["_b"], pairs["kind"], pairs["same_patient"], pairs["same_label"]
    ):
        if kind == "exact":
            new_flags = ["exact_duplicate"] + ([] if same_patient else ["duplicate_across_patients"])
            new_flags += [] if same_label else ["duplicate_across_labels"]
        else:
            # Near-identical images of one patient are expected (two views of one lesion).
            new_flags = [] if same_patient else ["near_duplicate_across_patients"]
            new_flags += [] if same_label else ["near_duplicate_across_labels"]
        for this, other in ((a, b), (b, a)):
            partners.setdefault((this, kind), []).append(table.at[other, "roi_id"])
            flags = table.at[this, "flags"]
            flags.extend(flag for flag in new_flags if flag not in flags)
    for (index, kind), others in partners.items():
        table.at[index, "exact_duplicates" if kind == "exact" else "near_duplicates"] = ";".join(others)

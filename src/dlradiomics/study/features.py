"""Radiomic and deep feature tables of a cohort, through the shared feature store.

Both extractors cache each ROI under a content key (image hash, mask hash, settings), so a
re-run with unchanged inputs reads every row back instead of recomputing it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dlradiomics.features.defaults import DEFAULT_BACKBONE
from dlradiomics.features.radiomic import extract_radiomic_features
from dlradiomics.models import KINDS_OF_SOURCE, build_model_table, table_level
from dlradiomics.schema import FAILURE_COLUMNS
from dlradiomics.study.clinical import ClinicalSpec

logger = logging.getLogger(__name__)


@dataclass
class FeatureTables:
    """Image-level feature tables by kind and the ROIs that could not be computed.

    Args:
        tables: `{"radiomic": ..., "deep": ...}`, each one row per `roi_id` with meta columns first.
        failures: `dlradiomics.schema.FAILURE_COLUMNS` for every ROI left out.
        cache_counts: per kind, how many ROIs were computed now and how many came from the store.
        clinical: how the clinical table (kind ``clinical``, when the study has one) was read.
    """

    tables: dict[str, pd.DataFrame]
    failures: pd.DataFrame
    cache_counts: dict[str, dict[str, int]]
    clinical: ClinicalSpec | None = None


def feature_kinds_for(sources: Sequence[str]) -> list[str]:
    """Image feature kinds the study's feature sources need ("dlr" needs both; clinical variables are no image feature)."""
    needed = {kind for source in sources for kind in KINDS_OF_SOURCE[source]}
    return [kind for kind in ("radiomic", "deep") if kind in needed]


def compute_feature_tables(cohort: Any, kinds: Sequence[str], *, store_dir: Path,
                           radiomics_params: Any = None, backbone: str = DEFAULT_BACKBONE,
                           weights: str | None = "imagenet", n_jobs: int = 1,
                           progress: bool = True, weights_dir: Path | None = None,
                           scheduler: str | None = None) -> FeatureTables:
    """Compute (or read from the store) the feature tables of a cohort.

    Args:
        cohort: a `dlradiomics.cohort.Cohort` or its table.
        kinds: "radiomic" and/or "deep".
        store_dir: the feature store folder, shared across runs.
        radiomics_params: PyRadiomics parameter file, overrides mapping, or None for defaults.
        backbone: deep backbone name.
        weights: backbone weights id or path.
        n_jobs: worker processes for radiomics.
        progress: show progress bars.
        weights_dir: the checked store of torchvision's ImageNet files (None: its default).
        scheduler: a Dask scheduler address: radiomics run on that cluster instead of local processes.

    Returns:
        The tables, the failures and the cache counts.
    """
    tables: dict[str, pd.DataFrame] = {}
    failures: list[pd.DataFrame] = []
    counts: dict[str, dict[str, int]] = {}
    if "radiomic" in kinds:
        logger.info("radiomic features: PyRadiomics, params=%s", radiomics_params or "package 2D defaults")
        result = extract_radiomic_features(cohort, store_dir, params=radiomics_params, n_jobs=n_jobs,
                                           scheduler=scheduler, progress=progress)
        tables["radiomic"] = result.features
        counts["radiomic"] = {"computed": result.n_computed, "cached": result.n_cached}
        failures.append(_failure_frame(result.failures, "radiomic"))
        logger.info("radiomic features: %d ROIs (%d computed, %d from the store), %d failed",
                    result.n_succeeded, result.n_computed, result.n_cached, result.n_failed)
    if "deep" in kinds:
        # Here, not at the top: the deep features import torch, which a radiomic-only study never needs.
        from dlradiomics.features.deep.embeddings import compute_embeddings, embedding_failures

        logger.info("deep features: backbone=%s weights=%s", backbone, weights)
        embeddings = compute_embeddings(cohort, backbone, weights, store_dir=store_dir, progress=progress,
                                        weights_dir=weights_dir)
        deep_failures = embedding_failures(embeddings)
        # The modelling tables concatenate feature tables; pandas compares `attrs` while doing so,
        # so the failures and settings travel here instead of in the table.
        embeddings = embeddings.copy()
        embeddings.attrs = {}
        tables["deep"] = embeddings
        failures.append(_failure_frame(deep_failures, "deep"))
        counts["deep"] = {"rois": len(embeddings)}
        logger.info("deep features: %d ROIs, %d failed", len(embeddings), len(deep_failures))
    all_failures = pd.concat(failures, ignore_index=True) if failures else pd.DataFrame(columns=FAILURE_COLUMNS)
    return FeatureTables(tables=tables, failures=all_failures, cache_counts=counts)


def _failure_frame(failures: pd.DataFrame, kind: str) -> pd.DataFrame:
    if failures is None or len(failures) == 0:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    frame = failures.copy()
    frame["stage"] = [f"{kind}: {stage}" if isinstance(stage, str) else kind
                      for stage in frame.get("stage", pd.Series([None] * len(frame), index=frame.index))]
    return frame.reindex(columns=FAILURE_COLUMNS)


def model_table_for(feature_tables: dict[str, pd.DataFrame], modalities: Sequence[str],
                    kinds: Sequence[str]) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """The modelling table of some modalities and kinds: image rows for one modality, patient rows for several.

    Args:
        feature_tables: image-level feature tables by kind.
        modalities: modalities to include.
        kinds: feature kinds to include.

    Returns:
        `(X, y, groups)` as `dlradiomics.models.blocks.build_model_table` gives them.
    """
    return build_model_table(feature_tables, list(modalities), list(kinds), level=table_level(modalities))

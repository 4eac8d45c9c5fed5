"""Validation that looks like the clinic: the chosen models cross-validated leaving one site out at a time.

A study that names a site column (`cv: {group_column: device}`) gets, beside its main folds, the
same configurations (the grid's best of each role: imaging alone, imaging with the clinical
variables, the chosen model) refitted with each site held out in turn: every fitted step and the
threshold learnt on the other sites only. The grid's choice is made on the main folds and only
re-evaluated here, never revised.
"""

from __future__ import annotations

import logging
import warnings

import pandas as pd

from dlradiomics.evaluation import (
    CONFIG_COLUMNS,
    GridResult,
    SiteValidation,
    cross_validate_patients,
    fold_table_from_groups,
    model_roles,
    per_site_metrics,
    reference_predictions,
    summarise_predictions,
)
from dlradiomics.models import MissingBlockWarning, ModelConfiguration, SelectionFallbackWarning
from dlradiomics.store import FeatureStore
from dlradiomics.study.features import FeatureTables, model_table_for
from dlradiomics.study.reference import reference_scores
from dlradiomics.study.result_cache import cached_frames, table_fingerprint
from dlradiomics.study.settings import StudySettings
from dlradiomics.study.stages import estimator_for, grid_arguments, grid_cache_key

logger = logging.getLogger(__name__)


def run_site_validation(settings: StudySettings, grid: GridResult, features: FeatureTables, table: pd.DataFrame,
                        store: FeatureStore) -> SiteValidation:
    """Cross-validate each role's configuration leaving one site out, cached in the store like the grid.

    Args:
        settings: study settings (`cv.group_column` set).
        grid: the grid on the main folds, whose best configurations are re-evaluated.
        features: the feature tables.
        table: the study's cohort rows (the site column).
        store: the feature store.

    Returns:
        The pooled and per-site results of each role, and the reference's per-site calls.
    """
    column = settings.cv.group_column
    fold_table = fold_table_from_groups(table, column)
    roles = model_roles(grid)
    modalities = [m for m in settings.cohort.modalities if m in set(table["modality"])]
    arguments = grid_arguments(settings, modalities, features.clinical)
    key = {"arguments": grid_cache_key(arguments, settings), "folds": table_fingerprint(fold_table),
           "roles": {role: {c: str(row[c]) for c in CONFIG_COLUMNS} for role, row in roles.items()},
           "tables": {kind: table_fingerprint(frame) for kind, frame in features.tables.items()}}

    def compute() -> dict[str, pd.DataFrame]:
        predictions = []
        for role, row in roles.items():
            configuration = ModelConfiguration(row["source"], tuple(str(row["modalities"]).split("+")), row["fusion"],
                                               row["classifier"])
            logger.info("leave-one-%s-out: %s (%s)", column, configuration.label, role)
            predictions.append(_site_predictions(settings, features, configuration, fold_table)
                               .assign(role=role, **configuration.key()))
        return {"oof": pd.concat(predictions, ignore_index=True)}

    frames, _ = cached_frames(store, "sites", key, ["oof"], compute)
    oof = frames["oof"]
    summary, per_site = [], []
    for role, predictions in oof.groupby("role", sort=False):
        label = " | ".join(str(predictions[c].iloc[0]) for c in CONFIG_COLUMNS)
        metrics = summarise_predictions(predictions, n_boot=settings.report.bootstrap, seed=settings.cv.seed)
        summary.append({"role": role, "configuration": label, **metrics.to_dict()})
        per_site.append(per_site_metrics(predictions, fold_table).assign(role=role, configuration=label))
    scores = reference_scores(settings, table)
    if scores is not None:
        labels = table.groupby(table["patient_id"].astype(str))["label"].first()
        calls = reference_predictions(scores, fold_table, labels, settings.reference.positive_at)
        calls = calls[calls["patient_id"].isin(set(oof["patient_id"].astype(str)))]
        name = settings.reference.label()
        per_site.insert(0, per_site_metrics(calls, fold_table).assign(role=f"{name} alone", configuration=name))
    return SiteValidation(column=column, fold_table=fold_table, summary=pd.DataFrame(summary),
                          per_site=pd.concat(per_site, ignore_index=True), oof=oof)


def _site_predictions(settings: StudySettings, features: FeatureTables, configuration: ModelConfiguration,
                      fold_table: pd.DataFrame) -> pd.DataFrame:
    X, y, groups = model_table_for(features.tables, list(configuration.modalities), list(configuration.kinds))
    estimator = estimator_for(settings, configuration, features.clinical)
    with warnings.catch_warnings():
        # As in the grid: expected in small folds, counted in the results rather than printed per fit.
        warnings.simplefilter("ignore", MissingBlockWarning)
        warnings.simplefilter("ignore", SelectionFallbackWarning)
        return cross_validate_patients(estimator, X, y, groups, outer=fold_table, threshold=settings.threshold.as_rule(),
                                       inner_splits=settings.cv.inner_folds, unscored="drop", seed=settings.cv.seed,
                                       n_jobs=settings.n_jobs)

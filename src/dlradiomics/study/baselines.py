"""The paper's CNN baselines, trained inside the study's outer folds and reported beside the grid.

Each baseline (``baselines: [resnet50, vgg19, ...]`` in the study file) is a
:class:`~dlradiomics.features.deep.CnnClassifier` per modality, cross-validated by
:func:`~dlradiomics.evaluation.crossval.cross_validate_patients` on the grid's own fold table: the
same test patients, the same threshold rule, the same prediction rows. Its rows join the grid's
results (``source="cnn"``, ``fusion="single"``, the backbone as ``classifier``) so the results,
ROC, DeLong and forest tables compare them with the radiomic and DLR models. They are comparison
rows (``comparison_only``): the final model is chosen among the grid's configurations, whose
bundles predict from feature tables.
"""

from __future__ import annotations

import logging
import time

import pandas as pd

from dlradiomics.evaluation import GridResult, summarise_predictions
from dlradiomics.evaluation.crossval import cross_validate_patients
from dlradiomics.features.deep import CnnClassifier
from dlradiomics.models import ModelConfiguration
from dlradiomics.store import FeatureStore
from dlradiomics.study.result_cache import cached_frames, table_fingerprint
from dlradiomics.study.settings import StudySettings

logger = logging.getLogger(__name__)

BASELINE_SOURCE = "cnn"
BASELINE_TABLES = ["results", "oof"]
ROI_COLUMNS = ["roi_id", "patient_id", "image", "mask", "mask_label", "slice"]
COMPARISON_NOTE = "comparison only: a CNN trained on each fold's training patients (never the final model)"


def baseline_estimator(settings: StudySettings, backbone: str) -> CnnClassifier:
    """The unfitted baseline of one backbone, with the study's training settings, store and seed."""
    return CnnClassifier(backbone, "imagenet", weights_dir=settings.deep.weights_dir, store_dir=str(settings.store),
                         seed=settings.cv.seed, **settings.baseline_training.estimator_params())


def run_cnn_baselines(settings: StudySettings, table: pd.DataFrame, fold_table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Cross-validate every baseline on every modality of the study, on the given outer folds.

    Args:
        settings: the study settings (``baselines``, ``baseline_training``, cv, threshold).
        table: the study's cohort rows (``roi_id, patient_id, modality, image, mask, label``...).
        fold_table: the grid's outer folds (``patient_id, repeat, fold``).

    Returns:
        ``{"results": rows in the grid's results format, "oof": prediction rows with the
        configuration columns}``. A baseline that cannot run on the data is a ``skipped`` row
        saying why; it does not stop the others.
    """
    results, predictions = [], []
    modalities = [modality for modality in settings.cohort.modalities if modality in set(table["modality"])]
    for modality in modalities:
        rows = table[table["modality"] == modality]
        X = rows[[column for column in ROI_COLUMNS if column in rows.columns]]
        X = X.set_axis(pd.Index(rows["patient_id"].astype(str).to_numpy(), name="patient_id"))
        for backbone in settings.baselines:
            configuration = ModelConfiguration(BASELINE_SOURCE, (modality,), "single", backbone)
            started = time.perf_counter()
            logger.info("CNN baseline %s: training inside %d outer folds", configuration.label,
                        fold_table.groupby(["repeat", "fold"]).ngroups)
            try:
                oof = cross_validate_patients(
                    baseline_estimator(settings, backbone), X, rows["label"].to_numpy(), outer=fold_table,
                    threshold=settings.threshold.as_rule(),
                    threshold_source=settings.baseline_training.threshold_source,
                    inner_splits=settings.cv.inner_folds, unscored="drop", seed=settings.cv.seed)
                summary = summarise_predictions(oof, n_boot=settings.report.bootstrap, seed=settings.cv.seed)
            except ValueError as error:
                results.append({**configuration.key(), "status": "skipped", "note": f"could not run: {error}",
                                "comparison_only": True})
                continue
            n_unscored = rows["patient_id"].nunique() - oof.groupby("repeat")["patient_id"].nunique().min()
            note = COMPARISON_NOTE + (f"; {n_unscored} patient(s) could not be scored (unreadable images)"
                                      if n_unscored else "")
            results.append({**configuration.key(), "status": "ok", "note": note, "comparison_only": True,
                            "inner_auc": oof.groupby(["repeat", "fold"])["inner_auc"].first().mean(),
                            **summary.to_dict(), "wall_s": time.perf_counter() - started})
            predictions.append(oof.assign(**configuration.key()))
    oof = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame()
    return {"results": pd.DataFrame(results), "oof": oof}


def with_cnn_baselines(grid: GridResult, settings: StudySettings, table: pd.DataFrame,
                       store: FeatureStore) -> tuple[GridResult, bool]:
    """The grid's result with the baselines' rows added (read back from the store when unchanged).

    Args:
        grid: the experiment grid's result (its fold table is reused).
        settings: the study settings.
        table: the study's cohort rows.
        store: the feature store (baseline tables are cached there; fitted networks too).

    Returns:
        The combined result, and whether the baselines came from the store.
    """
    key = {"baselines": list(settings.baselines), "training": settings.baseline_training.model_dump(),
           "weights_dir": str(settings.deep.weights_dir), "seed": settings.cv.seed,
           "inner_folds": settings.cv.inner_folds, "threshold": settings.threshold.model_dump(),
           "bootstrap": settings.report.bootstrap, "folds": table_fingerprint(grid.fold_table),
           "rows": table_fingerprint(table[[c for c in ["roi_id", "patient_id", "modality", "image", "mask", "label"]
                                            if c in table.columns]])}
    frames, cached = cached_frames(store, "cnn-baselines", key, BASELINE_TABLES,
                                   lambda: run_cnn_baselines(settings, table, grid.fold_table))
    results = pd.concat([grid.results, frames["results"]], ignore_index=True)
    oof = pd.concat([grid.oof, frames["oof"]], ignore_index=True) if len(frames["oof"]) else grid.oof
    # A CNN has no named features, so the grid's terms (what each model read) stay as they are.
    return GridResult(results=results, oof=oof, fold_table=grid.fold_table, choose_by=grid.choose_by,
                      terms=grid.terms, require_full_coverage=grid.require_full_coverage), cached

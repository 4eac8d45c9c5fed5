"""The stages of a study run, called in order by `Study.run`."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlradiomics.io.atomic import write_csv_atomic, write_yaml_atomic
from dlradiomics.study.accounting import manifest_row_of, unused_rows, with_feature_failures
from dlradiomics.study.features import FeatureTables, compute_feature_tables, feature_kinds_for, model_table_for
from dlradiomics.study.intensity import training_intensity_profiles
from dlradiomics.study.preflight import check_feature_coverage, preflight_study
from dlradiomics.study.qa_gate import check_duplicates, duplicate_pairs_across_patients
from dlradiomics.study.run_folder import (RunFolder, attach_log_file, create_run_folder, mark_run_complete,
                                          mark_run_failed, point_latest_at, write_provenance)
from dlradiomics.study.runner import StageTimer, StudyResult, cached_frames, table_fingerprint
from dlradiomics.study.settings import StudySettings

logger = logging.getLogger(__name__)
GRID_TABLES = ["results", "oof", "fold_table"]


@dataclass
class CohortStage:
    """The cohort after manifest checks and QA.

    Args:
        cohort: the validated cohort (all modalities).
        table: its rows of the study's modalities.
        qa_table: per-row QA findings.
        qa_summary: the QA summary (counts, duplicate pairs).
        unused: every manifest row the study does not use, with the reason
            (`dlradiomics.study.accounting.UNUSED_COLUMNS`).
        duplicates: duplicate image pairs across patients among the study's rows (only when the
            study allows them; otherwise they stop it).
    """

    cohort: Any
    table: pd.DataFrame
    qa_table: pd.DataFrame
    qa_summary: Any
    unused: pd.DataFrame = field(default_factory=pd.DataFrame)
    duplicates: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class FinalModel:
    """The chosen configuration refitted on all patients.

    Args:
        configuration: the grid row of the chosen configuration.
        bundle_path: where the bundle was saved.
        threshold: the frozen threshold (from inner out-of-fold predictions on all patients).
        n_patients: patients it was fitted on.
    """

    configuration: pd.Series
    bundle_path: Path
    threshold: float
    n_patients: int


def load_cohort(settings: StudySettings) -> CohortStage:
    """Read and check the manifest, keep the study's modalities, and run QA.

    Raises:
        PreflightError: when, once the images are opened, a modality has no usable row left or the
            folds no longer fit the classes.
        DuplicateImagesError: the same image under two patients, in a study that does not allow it.
    """
    from dlradiomics.cohort import read_manifest
    from dlradiomics.cohort.qa import run_qa
    from dlradiomics.study.preflight import check_classes_and_folds, check_modalities_present

    cohort = read_manifest(settings.cohort.manifest, check_images=True)
    for problem in cohort.problems:
        logger.warning("manifest problem (row left out): %s", problem)
    # Opening the images may have rejected more rows than the preflight saw: check again.
    check_modalities_present(cohort, settings.cohort.modalities)
    table = cohort.table[cohort.table["modality"].isin(settings.cohort.modalities)].reset_index(drop=True)
    check_classes_and_folds(table, settings, [])
    unused = unused_rows(cohort, settings.cohort.modalities)
    for record in unused[unused["stage"] == "modality"].itertuples():
        logger.warning("row %s (%s) left out: %s", record.row, record.roi_id, record.reason)
    qa_table, qa_summary = run_qa(cohort, near_duplicate_distance=settings.qa.near_duplicate_distance)
    duplicates = duplicate_pairs_across_patients(qa_summary, table["roi_id"])
    check_duplicates(duplicates, allowed=settings.qa.allow_duplicates, distance=settings.qa.near_duplicate_distance)
    if len(duplicates):
        logger.warning("%d duplicate image pair(s) across patients, allowed by qa.allow_duplicates", len(duplicates))
    logger.info("cohort: %d images of %d patients; QA flagged %d rows", len(table), table["patient_id"].nunique(),
                qa_summary.n_flagged)
    return CohortStage(cohort=cohort, table=table, qa_table=qa_table, qa_summary=qa_summary, unused=unused,
                       duplicates=duplicates)


def resolved_radiomics_params(settings: StudySettings) -> dict:
    """The complete PyRadiomics parameter mapping of the study (file, then overrides)."""
    from dlradiomics.features.radiomic import load_radiomics_params

    params = settings.radiomics.params
    params = dict(load_radiomics_params(params, overrides=settings.radiomics.overrides or None))
    families = settings.radiomics.families_section()
    if families:
        # The study file's families go into the mapping's `dlradiomics` section, so the run's
        # radiomics_params.yaml, the provenance and the bundle describe every radiomic feature.
        params["dlradiomics"] = {**params.get("dlradiomics", {}), **families}
    return params


def outer_folds(settings: StudySettings, table: pd.DataFrame):
    """The outer fold scheme: a manifest fold column, a split file, or repeated grouped k-fold."""
    from dlradiomics.evaluation.splits import RepeatedPatientKFold, fold_table_from_column, load_fold_table

    if settings.cv.fold_column is not None:
        return fold_table_from_column(table, settings.cv.fold_column)
    if settings.cv.split_file is not None:
        return load_fold_table(settings.cv.split_file)
    return RepeatedPatientKFold(n_splits=settings.cv.outer_folds, n_repeats=settings.cv.repeats, seed=settings.cv.seed)


def selections_for(settings: StudySettings) -> dict[str, tuple[str, ...]]:
    """Selector specs per feature source, from the study's selection and deep settings."""
    radiomic = [f"mannwhitney:{settings.selection.mann_whitney_p}",
                f"correlation:{settings.selection.correlation_threshold}"]
    if settings.selection.lasso:
        radiomic.append("lasso")
    deep = (f"pca:{settings.deep.pca_components}",)
    return {"radiomic": tuple(radiomic), "deep": deep, "dlr": deep}


def grid_arguments(settings: StudySettings, modalities: list[str]) -> dict[str, Any]:
    """Keyword arguments of `run_grid` from the settings (also part of the cache key)."""
    from dlradiomics.evaluation.configurations import default_modality_sets
    from dlradiomics.models import FUSIONS

    modality_sets = default_modality_sets(modalities)
    if "single" not in settings.fusion:
        modality_sets = [modality_set for modality_set in modality_sets if len(modality_set) > 1] or modality_sets
    return {
        "sources": list(settings.feature_sources),
        "modality_sets": [list(modality_set) for modality_set in modality_sets],
        "fusions": [fusion for fusion in settings.fusion if fusion in FUSIONS],
        "classifiers": list(settings.classifiers),
        "threshold": settings.threshold.as_rule(),
        "inner_splits": settings.cv.inner_folds,
        "selections": selections_for(settings),
        "n_boot": settings.report.bootstrap,
        "seed": settings.cv.seed,
    }


def run_grid_cached(settings: StudySettings, features: FeatureTables, table: pd.DataFrame, store: Any,
                    *, namespace: str = "grid", permute_labels: bool = False):
    """Run the experiment grid, or read its tables back from the store when the inputs are unchanged.

    Args:
        settings: study settings.
        features: the feature tables.
        table: cohort rows (for a fold column).
        store: the feature store.
        namespace: store namespace ("grid" or "canary").
        permute_labels: run on patient-level permuted labels (the leakage canary).

    Returns:
        A `dlradiomics.evaluation.grid.GridResult` and whether it came from the store.
    """
    from dlradiomics.evaluation.grid import run_grid
    from dlradiomics.evaluation.grid_result import GridResult

    modalities = [m for m in settings.cohort.modalities if m in set(table["modality"])]
    arguments = grid_arguments(settings, modalities)
    if permute_labels:
        # A representative subset keeps the canary cheap: single-modality models and the first
        # fusion of all modalities together, radiomic and deep sources, with the first classifier.
        arguments["modality_sets"] = [[m] for m in modalities] + ([modalities] if len(modalities) > 1 else [])
        arguments["sources"] = [source for source in arguments["sources"] if source != "dlr"] or arguments["sources"]
        arguments["classifiers"] = arguments["classifiers"][:1]
        arguments["fusions"] = arguments["fusions"][:1]
    folds = outer_folds(settings, table)
    tables = features.tables
    if permute_labels:
        tables = permuted_label_tables(tables, seed=settings.cv.seed)
    key = {"arguments": arguments, "folds": folds if isinstance(folds, pd.DataFrame) else repr(folds),
           "tables": {kind: table_fingerprint(frame) for kind, frame in tables.items()}}
    key["folds"] = table_fingerprint(key["folds"]) if isinstance(key["folds"], pd.DataFrame) else key["folds"]

    def compute() -> dict[str, pd.DataFrame]:
        result = run_grid(tables, outer=folds, n_jobs=settings.n_jobs, **arguments)
        return {"results": result.results, "oof": result.oof, "fold_table": result.fold_table}

    frames, cached = cached_frames(store, namespace, key, GRID_TABLES, compute)
    return GridResult(results=frames["results"], oof=frames["oof"], fold_table=frames["fold_table"]), cached


def permuted_label_tables(tables: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """Feature tables whose labels are permuted across patients (every image of a patient keeps one label).

    Args:
        tables: image-level feature tables.
        seed: seed of the permutation.
    """
    from dlradiomics.evaluation.canary import permute_patient_labels

    patients = pd.concat([frame[["patient_id", "label"]] for frame in tables.values()]).drop_duplicates("patient_id")
    permuted = permute_patient_labels(patients["label"].to_numpy(), patients["patient_id"].astype(str).to_numpy(),
                                      seed=seed)
    shuffled = dict(zip(patients["patient_id"], permuted))
    return {kind: frame.assign(label=frame["patient_id"].map(shuffled).astype(int)) for kind, frame in tables.items()}


def fit_final_model(settings: StudySettings, grid, features: FeatureTables, run: RunFolder,
                    radiomics_params: dict, gradcam_tensors: dict[str, np.ndarray]) -> FinalModel:
    """Refit the configuration chosen by inner CV on all patients and save it as a bundle.

    The threshold is frozen from inner out-of-fold predictions on all patients (the same rule as
    inside each outer fold), never from the model's own training predictions.
    """
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_predict

    from dlradiomics.bundle import save_bundle
    from dlradiomics.evaluation.threshold import choose_threshold
    from dlradiomics.models import (ModelConfiguration, PatientGroupKFold, SelectionFallbackWarning,
                                    aggregate_by_patient, build_estimator)

    best = grid.best
    configuration = ModelConfiguration(best["source"], tuple(best["modalities"].split("+")), best["fusion"],
                                       best["classifier"])
    kinds = list(configuration.kinds)
    X, y, groups = model_table_for(features.tables, list(configuration.modalities), kinds)
    estimator = build_estimator(configuration, selections=selections_for(settings),
                                inner_cv=settings.cv.inner_folds, random_state=settings.cv.seed)
    with warnings.catch_warnings():
        # As in the grid: a selector keeping its best k on a small cohort is expected, not news.
        warnings.simplefilter("ignore", SelectionFallbackWarning)
        model = clone(estimator).fit(X, y)
        inner_probability = cross_val_predict(clone(estimator), X, y, groups=groups.to_numpy(),
                                              cv=PatientGroupKFold(settings.cv.inner_folds, random_state=settings.cv.seed),
                                              method="predict_proba")[:, 1]
    patient_probability = aggregate_by_patient(inner_probability, groups.to_numpy()).dropna()
    patient_label = y.groupby(level=0).first().reindex(patient_probability.index)
    threshold = choose_threshold(patient_label.to_numpy(), patient_probability.to_numpy(), settings.threshold.as_rule())
    bundle_settings = {
        "configuration": configuration.key(),
        "selection_rule": grid.selection_rule,
        "radiomics_params": radiomics_params,
        "backbone": settings.deep.backbone,
        "weights": settings.deep.weights,
        "preprocessing": {"deep": "ROI crop around the mask's box, resized and normalised for the backbone "
                                  "(dlradiomics.features.deep.prepare_roi defaults)",
                          "patient_aggregation": "mean probability over a patient's images"},
        "threshold_rule": settings.threshold.model_dump(),
        "trained_on": {"patients": int(X.index.nunique()), "rows": int(len(X)), "study": settings.name},
    }
    # Grad-CAM heads travel only with models that use deep features: overlays of a head that takes
    # no part in a radiomic model's prediction would explain a different model.
    tensors = {name: value for name, value in gradcam_tensors.items()
               if name.split(".")[0] in configuration.modalities} if "deep" in kinds else {}
    profiles = training_intensity_profiles(features.tables[kinds[0]], list(configuration.modalities))
    path = save_bundle(run.bundle_dir, model, training_table=X, threshold=threshold,
                       modalities=list(configuration.modalities), feature_kinds=kinds, level=configuration.level,
                       settings=bundle_settings, tensors=tensors or None, intensity_profiles=profiles)
    logger.info("final model %s refitted on %d patients; threshold %.3f; bundle %s", configuration.label,
                X.index.nunique(), threshold, path)
    return FinalModel(configuration=best, bundle_path=path, threshold=threshold, n_patients=int(X.index.nunique()))


def run_study(settings: StudySettings, *, progress: bool = True, opening: str | None = None) -> StudyResult:
    """Run every stage of a study into a new run folder; see `dlradiomics.study.runner.Study`."""
    from dlradiomics.report.study_report import StudyReportInputs, write_study_report
    from dlradiomics.store import FeatureStore
    from dlradiomics.study.explain import fit_gradcam_heads, write_gradcam_overlays

    timer = StageTimer(progress)
    # Everything that can be checked without opening an image, before a run folder exists.
    preflight = preflight_study(settings, radiomics_params=lambda: resolved_radiomics_params(settings))
    for warning in preflight.warnings:
        timer.console.print(f"[yellow]warning[/yellow]: {warning}")
    run = create_run_folder(settings.output)
    handler = attach_log_file(run)
    try:
        logger.info("study %s: run folder %s", settings.name, run.root)
        for warning in preflight.warnings:
            logger.warning("preflight: %s", warning)
        with timer.stage("cohort and QA"):
            cohort_stage = load_cohort(settings)
            write_provenance(run, settings.to_yaml_dict(), cohort_stage.table, settings.cohort.manifest)
            write_csv_atomic(cohort_stage.qa_table, run.root / "qa.csv")
        radiomics_params = resolved_radiomics_params(settings)
        params_file = run.root / "radiomics_params.yaml"
        write_yaml_atomic(params_file, radiomics_params, sort_keys=True)
        kinds = feature_kinds_for(settings.feature_sources)
        with timer.stage(f"features ({' and '.join(kinds)}, through the store)"):
            features = compute_feature_tables(cohort_stage.table, kinds, store_dir=settings.store,
                                              radiomics_params=params_file, backbone=settings.deep.backbone,
                                              weights=settings.deep.weights, n_jobs=settings.n_jobs,
                                              progress=progress)
            write_csv_atomic(features.failures, run.root / "feature_failures.csv")
            cohort_stage.unused = with_feature_failures(cohort_stage.unused, features.failures, cohort_stage.table,
                                                        manifest_row_of(cohort_stage.cohort))
            write_csv_atomic(cohort_stage.unused, run.root / "unused_rows.csv")
            for warning in check_feature_coverage(cohort_stage.table, features.tables, features.failures, settings):
                logger.warning("after features: %s", warning)
        store = FeatureStore(settings.store)
        with timer.stage("experiment grid (nested, patient-grouped CV)", spinner=True):
            grid, grid_cached = run_grid_cached(settings, features, cohort_stage.table, store)
            write_csv_atomic(grid.fold_table, run.root / "folds.csv")
            write_csv_atomic(grid.oof, run.root / "oof_predictions.csv")
        canary = None
        if settings.report.canary:
            with timer.stage("permuted-label canary", spinner=True):
                canary, _ = run_grid_cached(settings, features, cohort_stage.table, store, namespace="canary",
                                            permute_labels=True)
        gradcam_tensors: dict[str, np.ndarray] = {}
        gallery = pd.DataFrame()
        if "deep" in features.tables:
            with timer.stage("Grad-CAM", spinner=True):
                gradcam_tensors = fit_gradcam_heads(features.tables["deep"], list(settings.cohort.modalities),
                                                    seed=settings.cv.seed)
                examples = _gallery_rows(cohort_stage.table, settings.report.gradcam_examples)
                gallery = write_gradcam_overlays(examples, run.root / "gradcam", tensors=gradcam_tensors,
                                                 backbone=settings.deep.backbone, weights=settings.deep.weights)
        final = None
        if not grid.completed.empty:
            with timer.stage("final model", spinner=True):
                final = fit_final_model(settings, grid, features, run, radiomics_params, gradcam_tensors)
        with timer.stage("report", spinner=True):
            report_path = write_study_report(StudyReportInputs(
                settings=settings, run=run, cohort=cohort_stage, features=features, grid=grid, canary=canary,
                final=final, gallery=gallery, opening=opening or settings.report.note, grid_cached=grid_cached,
                stage_seconds=dict(timer.seconds)))
        mark_run_complete(run)
        point_latest_at(run)
        return StudyResult(run_dir=run.root, report_path=report_path,
                           bundle_path=final.bundle_path if final else None, results=grid.results,
                           best=final.configuration if final else None, stage_seconds=dict(timer.seconds),
                           unused_rows=cohort_stage.unused, warnings=list(preflight.warnings),
                           n_manifest_rows=len(cohort_stage.cohort.table) + len(cohort_stage.cohort.rejected))
    except BaseException as error:
        mark_run_failed(run, error)
        raise
    finally:
        logging.getLogger("dlradiomics").removeHandler(handler)
        handler.close()


def _gallery_rows(table: pd.DataFrame, count: int) -> pd.DataFrame:
    """A balanced pick of ROIs for the gallery: take one ROI of each modality and class in turn."""
    if count <= 0:
        return table.head(0)
    rank_in_group = table.groupby(["modality", "label"], sort=True).cumcount()
    return table.assign(_rank=rank_in_group).sort_values(["_rank", "modality", "label"], kind="stable") \
        .head(count).drop(columns="_rank")

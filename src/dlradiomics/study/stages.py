"""The stages of a study run, called in order by `dlradiomics.study.run.run_study`."""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from dlradiomics.bundle import classes_beyond_allowlist, save_bundle
from dlradiomics.cohort import Cohort, read_manifest
from dlradiomics.cohort.qa import QaCache, QaSummary, run_qa
from dlradiomics.cohort.qa.cache import QA_NAMESPACE
from dlradiomics.evaluation import (
    GridResult,
    RepeatedPatientKFold,
    choose_threshold,
    default_modality_sets,
    fold_table_from_column,
    load_fold_table,
    run_grid,
)
from dlradiomics.evaluation.canary import (
    GridCanaryVerdict,
    describe_canary_auc,
    judge_grid_canary,
    run_grid_with_canary,
)
from dlradiomics.evaluation.crossval import PREDICTION_COLUMNS, FoldScheme
from dlradiomics.evaluation.scheduling import ProgressCallback
from dlradiomics.models import (
    CLINICAL_KIND,
    FUSIONS,
    CorrelationStep,
    DLRComposition,
    LassoStep,
    MannWhitneyStep,
    ModelConfiguration,
    PatientGroupKFold,
    PCAStep,
    SelectionFallbackWarning,
    SelectionStep,
    aggregate_by_patient,
    build_estimator,
    describe_step,
    model_terms,
)
from dlradiomics.io import FileHashCache
from dlradiomics.models.shared_fits import FitCache, sharing_fits
from dlradiomics.progress import Progress
from dlradiomics.store import FILE_HASHES, FeatureStore
from dlradiomics.study.accounting import unused_rows
from dlradiomics.study.clinical import ClinicalSpec
from dlradiomics.study.features import FeatureTables, model_table_for
from dlradiomics.study.intensity import training_intensity_profiles
from dlradiomics.study.preflight import (
    check_classes_and_folds,
    check_modalities_present,
    check_views_present,
    study_rows,
)
from dlradiomics.study.qa_gate import check_duplicates, duplicate_pairs_across_patients
from dlradiomics.study.result_cache import (
    bundle_files_frame,
    package_source_fingerprint,
    restore_bundle_files,
    store_frames,
    stored_frames,
    table_fingerprint,
)
from dlradiomics.study.run_folder import RunFolder
from dlradiomics.study.settings import StudySettings
from dlradiomics.versions import library_versions

logger = logging.getLogger(__name__)
GRID_TABLES = ["results", "oof", "fold_table", "terms"]
GRID_NAMESPACE = "grid"
CANARY_NAMESPACE = "canary"
FINAL_MODEL_NAMESPACE = "final_model"
FINAL_MODEL_TABLES = ["bundle_files", "summary", "terms"]


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
        file_hashes: the store's file hash cache, every image and mask of the cohort hashed (for
            the run's provenance; its caller saves it).
    """

    cohort: Cohort
    table: pd.DataFrame
    qa_table: pd.DataFrame
    qa_summary: QaSummary
    unused: pd.DataFrame = field(default_factory=pd.DataFrame)
    duplicates: pd.DataFrame = field(default_factory=pd.DataFrame)
    file_hashes: FileHashCache = field(default_factory=FileHashCache)


@dataclass
class FinalModel:
    """The chosen configuration refitted on all patients.

    Args:
        configuration: the grid row of the chosen configuration.
        bundle_path: where the bundle was saved.
        threshold: the frozen threshold (from inner out-of-fold predictions on all patients).
        n_patients: patients it was fitted on.
        terms: what the fitted model reads: its selected columns and their weights
            (`dlradiomics.models.model_terms`).
        from_store: the bundle's files came from the store (an earlier run's fit of the same inputs).
    """

    configuration: pd.Series
    bundle_path: Path
    threshold: float
    n_patients: int
    terms: pd.DataFrame = field(default_factory=pd.DataFrame)
    from_store: bool = False


def load_cohort(settings: StudySettings, *, progress: bool = False) -> CohortStage:
    """Read and check the manifest, keep the study's modalities (and views), and run QA (`progress`: show its count).

    Each image and mask is read once, for the manifest's readability check and QA together, and
    only when its findings are not in the store's ``qa`` namespace under the files' content
    (`dlradiomics.cohort.qa.QaCache`): a re-run with unchanged files opens no image.

    Raises:
        PreflightError: when, once the images are opened, a modality has no usable row left or the
            folds no longer fit the classes.
        DuplicateImagesError: the same image under two patients, in a study that does not allow it.
    """
    store = FeatureStore(settings.store)
    hashes = FileHashCache(Path(settings.store) / FILE_HASHES)
    qa_cache = QaCache(store, hashes, n_jobs=settings.n_jobs, progress=progress)
    try:
        cohort = read_manifest(settings.cohort.manifest, check_images=True, read_errors=qa_cache.read_errors)
        stage = _checked_cohort(settings, cohort, qa_cache)
    finally:
        store.close()
        store.consolidate(QA_NAMESPACE)
    logger.info("QA: %d images checked, %d findings from the store (files unchanged)", qa_cache.n_computed,
                qa_cache.n_reused)
    stage.file_hashes = hashes
    return stage


def _checked_cohort(settings: StudySettings, cohort: Cohort, qa_cache: QaCache) -> CohortStage:
    """The study's rows of a read cohort, checked, with QA (through `qa_cache`) and unused rows."""
    for problem in cohort.problems:
        logger.warning("manifest problem (row left out): %s", problem)
    # Opening the images may have rejected more rows than the preflight saw: check again.
    check_modalities_present(cohort, settings.cohort.modalities)
    check_views_present(cohort, settings.cohort.modalities, settings.cohort.views)
    table = study_rows(cohort, settings.cohort.modalities, settings.cohort.views)
    check_classes_and_folds(table, settings, [])
    unused = unused_rows(cohort, settings.cohort.modalities, settings.cohort.views)
    for record in unused[unused["stage"].isin(["modality", "view"])].itertuples():
        logger.warning("row %s (%s) left out: %s", record.row, record.roi_id, record.reason)
    qa_table, qa_summary = run_qa(cohort, near_duplicate_distance=settings.qa.near_duplicate_distance,
                                   cache=qa_cache)
    duplicates = duplicate_pairs_across_patients(qa_summary, table["roi_id"])
    check_duplicates(duplicates, allowed=settings.qa.allow_duplicates, distance=settings.qa.near_duplicate_distance)
    if len(duplicates):
        logger.warning("%d duplicate image pair(s) across patients, allowed by qa.allow_duplicates", len(duplicates))
    logger.info("cohort: %d images of %d patients; QA flagged %d rows", len(table), table["patient_id"].nunique(),
                qa_summary.n_flagged)
    return CohortStage(cohort=cohort, table=table, qa_table=qa_table, qa_summary=qa_summary, unused=unused,
                       duplicates=duplicates)


def outer_folds(settings: StudySettings, table: pd.DataFrame) -> pd.DataFrame | FoldScheme:
    """The outer fold scheme: a manifest fold column, a split file, or repeated grouped k-fold."""
    if settings.cv.fold_column is not None:
        return fold_table_from_column(table, settings.cv.fold_column)
    if settings.cv.split_file is not None:
        return load_fold_table(settings.cv.split_file)
    return RepeatedPatientKFold(n_splits=settings.cv.outer_folds, n_repeats=settings.cv.repeats, seed=settings.cv.seed)


def selections_for(settings: StudySettings, clinical: ClinicalSpec | None = None) -> dict[str, tuple[SelectionStep, ...]]:
    """Selection steps per feature source, from the study's selection and deep settings.

    With clinical variables, the sources that read them start with their encoding step (which
    needs the categories `ClinicalSpec` read from the cohort).
    """
    radiomic: list[SelectionStep] = [MannWhitneyStep(settings.selection.mann_whitney_p),
                                     CorrelationStep(settings.selection.correlation_threshold)]
    if settings.selection.lasso:
        radiomic.append(LassoStep())
    deep = (PCAStep(settings.deep.pca_components),)
    selections = {"radiomic": tuple(radiomic), "deep": deep, "dlr": deep}
    if clinical is not None:
        encoding = clinical.encoding_step()
        selections.update({"clinical": (encoding,), "radiomic+clinical": (encoding, *radiomic)})
    return selections


def dlr_for(settings: StudySettings) -> DLRComposition:
    """The study's DLR composition (its ``dlr:`` section and the per-modality deep PCA)."""
    return DLRComposition(composition=settings.dlr.composition, deep_components=settings.dlr.deep_components,
                          radiomic_components=settings.dlr.radiomic_components,
                          deep_components_per_modality=settings.deep.pca_components,
                          whole_table_components=settings.dlr.whole_table_components)


def own_classifiers_for(settings: StudySettings) -> dict[str, BaseEstimator]:
    """The study's own classifiers by name, unfitted and seeded with the study's seed."""
    return {entry.name: entry.build(random_state=settings.cv.seed) for entry in settings.own_classifiers()}


def grid_arguments(settings: StudySettings, modalities: list[str], clinical: ClinicalSpec | None = None
                   ) -> dict[str, Any]:
    """Keyword arguments of `run_grid` from the settings (see `grid_cache_key` for how they are cached)."""
    modality_sets = default_modality_sets(modalities)
    if "single" not in settings.fusion:
        modality_sets = [modality_set for modality_set in modality_sets if len(modality_set) > 1] or modality_sets
    return {
        "sources": list(settings.feature_sources),
        "modality_sets": [list(modality_set) for modality_set in modality_sets],
        "fusions": [fusion for fusion in settings.fusion if fusion in FUSIONS],
        "classifiers": settings.classifier_names(),
        "custom_classifiers": own_classifiers_for(settings),
        "threshold": settings.threshold.as_rule(),
        "inner_splits": settings.cv.inner_folds,
        "selections": selections_for(settings, clinical),
        "dlr": dlr_for(settings),
        "n_boot": settings.report.bootstrap,
        "seed": settings.cv.seed,
    }


def grid_cache_key(arguments: dict[str, Any], settings: StudySettings) -> dict[str, Any]:
    """The grid arguments as plain values: selection steps and the DLR composition as their fields, own
    classifiers as the study file declares them (import path and parameters), everything else as it is."""
    own = {entry.name: entry.model_dump() for entry in settings.own_classifiers()}
    return {
        **arguments,
        # The columns of the out-of-fold table: a cached grid of an older engine lacks new ones.
        "prediction_columns": list(PREDICTION_COLUMNS),
        "selections": {source: [describe_step(step) for step in steps] if steps is not None else None
                       for source, steps in arguments["selections"].items()},
        "custom_classifiers": {name: own[name] for name in arguments["custom_classifiers"]},
        "dlr": asdict(arguments["dlr"]),
    }


@dataclass
class GridStage:
    """The experiment grid and its permuted-label canary.

    Args:
        grid: the grid's results.
        canary: the same grid on permuted labels (None when the study runs no canary).
        verdict: the canary's AUCs judged against chance (None without a canary).
        grid_cached: the grid's tables came from the store.
        canary_cached: the canary's tables came from the store.
    """

    grid: GridResult
    canary: GridResult | None = None
    verdict: GridCanaryVerdict | None = None
    grid_cached: bool = False
    canary_cached: bool = False


def run_grid_and_canary_cached(settings: StudySettings, features: FeatureTables, table: pd.DataFrame,
                               store: FeatureStore, *, progress: ProgressCallback | None = None) -> GridStage:
    """Run the experiment grid and its canary together, or read either back from the store when its inputs are unchanged.

    The canary (``report.canary``) is the whole grid on labels permuted between patients, on the
    grid's outer folds, judged configuration by configuration and as "keep the best by inner AUC"
    (`dlradiomics.evaluation.canary.judge_grid_canary`). Run together, the two share every fit
    that reads no labels.

    Args:
        settings: study settings.
        features: the feature tables.
        table: cohort rows (for a fold column).
        store: the feature store.
        progress: called as the grid's cells finish.

    Returns:
        The `GridStage`.
    """
    modalities = [m for m in settings.cohort.modalities if m in set(table["modality"])]
    arguments = grid_arguments(settings, modalities, features.clinical)
    folds = outer_folds(settings, table)
    key = {"arguments": grid_cache_key(arguments, settings),
           "folds": table_fingerprint(folds) if isinstance(folds, pd.DataFrame) else repr(folds),
           "tables": {kind: table_fingerprint(frame) for kind, frame in features.tables.items()},
           # Another version of the code or of the libraries may answer differently: it runs the grid again.
           "versions": library_versions(), "code": package_source_fingerprint()}
    canary_key = {**key, "canary": {"what": "every configuration, on the grid's folds",
                                    "permutation_seed": settings.cv.seed}}
    run_on = {"n_jobs": settings.n_jobs, "scheduler": settings.scheduler, "progress": progress}
    grid_frames = stored_frames(store, GRID_NAMESPACE, key, GRID_TABLES)
    canary_frames = stored_frames(store, CANARY_NAMESPACE, canary_key, GRID_TABLES) if settings.report.canary else None
    stage = GridStage(grid=_grid_result(grid_frames) if grid_frames else None,  # type: ignore[arg-type]
                      canary=_grid_result(canary_frames) if canary_frames else None,
                      grid_cached=grid_frames is not None, canary_cached=canary_frames is not None)
    wants_canary = settings.report.canary and canary_frames is None
    if grid_frames is None and wants_canary:
        stage.grid, stage.canary = run_grid_with_canary(features.tables, canary_seed=settings.cv.seed, outer=folds,
                                                        **arguments, **run_on)
    elif grid_frames is None:
        stage.grid = run_grid(features.tables, outer=folds, **arguments, **run_on)
    elif wants_canary:
        _, stage.canary = run_grid_with_canary(features.tables, canary_seed=settings.cv.seed, run_grid_itself=False,
                                               outer=stage.grid.fold_table, **arguments, **run_on)
    if not stage.grid_cached:
        store_frames(store, GRID_NAMESPACE, key, _grid_frames(stage.grid))
    if stage.canary is not None and not stage.canary_cached:
        store_frames(store, CANARY_NAMESPACE, canary_key, _grid_frames(stage.canary))
    for result in (stage.grid, stage.canary):
        if result is not None:
            result.require_full_coverage = settings.choice.require_full_coverage
            result.choose_by = settings.choice.by
    if stage.canary is not None:
        stage.verdict = judge_grid_canary(stage.canary, n_boot=settings.report.bootstrap, seed=settings.cv.seed)
    return stage


def log_canary_verdict(stage: GridStage) -> None:
    """Say in the run log what the canary found: a warning per AUC outside the band, as strong as its CI allows."""
    verdict = stage.verdict
    if verdict is None:
        return
    nested = verdict.nested
    if nested is not None:
        logger.info("canary (permuted labels): %s AUC %.3f (95%% CI %.3f-%.3f)", nested["what"], nested["auc"],
                    nested["auc_ci_low"], nested["auc_ci_high"])
    for row in verdict.problems.itertuples():
        logger.warning("canary: %s", describe_canary_auc(row.auc, row.auc_ci_low, row.auc_ci_high, what=row.what,
                                                         n_patients=row.n_patients, band=verdict.band))


def _grid_frames(grid: GridResult) -> dict[str, pd.DataFrame]:
    return {"results": grid.results, "oof": grid.oof, "fold_table": grid.fold_table, "terms": grid.terms}


def _grid_result(frames: dict[str, pd.DataFrame]) -> GridResult:
    return GridResult(results=frames["results"], oof=frames["oof"], fold_table=frames["fold_table"],
                      terms=frames["terms"])

def estimator_for(settings: StudySettings, configuration: ModelConfiguration,
                  clinical: ClinicalSpec | None = None) -> BaseEstimator:
    """The unfitted estimator of one configuration, built with the study's settings (as the grid builds it)."""
    return build_estimator(configuration, selections=selections_for(settings, clinical),
                           custom_classifiers=own_classifiers_for(settings), dlr=dlr_for(settings),
                           inner_cv=settings.cv.inner_folds, random_state=settings.cv.seed)


def fit_final_model(settings: StudySettings, grid: GridResult, features: FeatureTables, run: RunFolder,
                    radiomics_params: dict, gradcam_tensors: dict[str, np.ndarray], *,
                    progress: bool = False, store: FeatureStore | None = None,
                    file_hashes: FileHashCache | None = None) -> FinalModel:
    """Refit the configuration chosen by inner CV on all patients and save it as a bundle.

    The threshold is frozen from inner out-of-fold predictions on all patients (the same rule as
    inside each outer fold), never from the model's own training predictions. `progress` shows
    the count of fits (the model on all patients, then one per inner fold) and the time left.

    With a ``store`` and the ``file_hashes`` of the cohort's files, the bundle's files are kept in
    the store's ``final_model`` namespace under a key of everything the fit and the bundle depend
    on (`final_model_key`): a re-run with the same inputs writes the same files again without
    fitting (the stored bundle is the one an earlier run fitted on the very same inputs; its files
    are checked against the SHA-256 digests its ``bundle.json`` records before they are used).
    """
    best = grid.best
    configuration, estimator = chosen_estimator(settings, best, features.clinical)
    kinds = list(configuration.kinds)
    X, y, groups = model_table_for(features.tables, list(configuration.modalities), kinds)
    # Grad-CAM heads travel only with models that use deep features: overlays of a head that takes
    # no part in a radiomic model's prediction would explain a different model.
    tensors = {name: value for name, value in gradcam_tensors.items()
               if name.split(".")[0] in configuration.modalities} if "deep" in kinds else {}
    key = None
    if store is not None and file_hashes is not None:
        try:
            key = final_model_key(settings, configuration, features, X, y, groups, radiomics_params, tensors,
                                  file_hashes)
        except OSError as error:  # an image that cannot be hashed: its content is unknown, nothing is cached
            logger.info("final model: not cached (%s)", error)
        stored = stored_frames(store, FINAL_MODEL_NAMESPACE, key, FINAL_MODEL_TABLES) if key is not None else None
        if stored is not None and restore_bundle_files(stored["bundle_files"], run.bundle_dir):
            summary = stored["summary"].iloc[0]
            logger.info("final model %s read from the store (inputs unchanged); threshold %.3f; bundle %s",
                        configuration.label, summary["threshold"], run.bundle_dir)
            return FinalModel(configuration=best, bundle_path=run.bundle_dir, threshold=float(summary["threshold"]),
                              n_patients=int(summary["n_patients"]), terms=stored["terms"], from_store=True)
    inner_folds = list(PatientGroupKFold(settings.cv.inner_folds, random_state=settings.cv.seed)
                       .split(X, y, groups.to_numpy()))
    inner_probability = np.full(len(X), np.nan)
    with warnings.catch_warnings(), Progress(1 + len(inner_folds), "final model", unit="fit",
                                             enabled=progress) as bar:
        # As in the grid: a selector keeping its best k on a small cohort is expected, not news.
        warnings.simplefilter("ignore", SelectionFallbackWarning)
        model = clone(estimator).fit(X, y)
        bar.update()
        # cross_val_predict's loop, written out so that each fit can be counted. The inner-fold
        # models only score their held-out patients and are never saved, so they share fits as
        # the grid's do (same probabilities); the bundle's model above is a plain fit.
        with sharing_fits(FitCache()):
            inner_estimator = estimator_for(settings, configuration, features.clinical)
            for train, test in inner_folds:
                fitted = clone(inner_estimator).fit(X.iloc[train], y.iloc[train])
                inner_probability[test] = fitted.predict_proba(X.iloc[test])[:, 1]
                bar.update()
    patient_probability = aggregate_by_patient(inner_probability, groups.to_numpy()).dropna()
    patient_label = y.groupby(level=0).first().reindex(patient_probability.index)
    threshold = choose_threshold(patient_label.to_numpy(), patient_probability.to_numpy(), settings.threshold.as_rule())
    own = {entry.name: entry for entry in settings.own_classifiers()}
    # A study's own classifier is code the bundle's allowlist does not know: the bundle records its
    # import path and the classes the fitted model holds, which a loader must name to trust them.
    own_classes = classes_beyond_allowlist(model) if configuration.classifier in own else []
    bundle_settings = {
        "configuration": configuration.key(),
        "classifier": ({"name": configuration.classifier, "estimator": own[configuration.classifier].estimator,
                        "params": own[configuration.classifier].params, "classes": own_classes}
                       if configuration.classifier in own else {"name": configuration.classifier}),
        "selection_rule": grid.selection_rule,
        "radiomics_params": radiomics_params,
        "backbone": settings.deep.backbone,
        "weights": settings.deep.weights,
        # The study's view filter travels with the model: predict leaves out images of other views.
        "views": {modality: list(names) for modality, names in settings.cohort.views.items()
                  if modality in configuration.modalities},
        "preprocessing": {"deep": "ROI crop around the mask's box, resized and normalised for the backbone "
                                  "(dlradiomics.features.deep.prepare_roi defaults)",
                          "patient_aggregation": "mean probability over a patient's images"},
        "threshold_rule": settings.threshold.model_dump(),
        # How predict reads the clinical variables of new patients' manifests (columns, categories, rules).
        **({"clinical": features.clinical.record()} if CLINICAL_KIND in kinds and features.clinical else {}),
        "trained_on": {"patients": int(X.index.nunique()), "rows": int(len(X)), "study": settings.name},
    }
    profiles = training_intensity_profiles(features.tables[kinds[0]], list(configuration.modalities))
    path = save_bundle(run.bundle_dir, model, training_table=X, threshold=threshold,
                       modalities=list(configuration.modalities), feature_kinds=kinds, level=configuration.level,
                       settings=bundle_settings, tensors=tensors or None, intensity_profiles=profiles,
                       trusted=own_classes)
    logger.info("final model %s refitted on %d patients; threshold %.3f; bundle %s", configuration.label,
                X.index.nunique(), threshold, path)
    final = FinalModel(configuration=best, bundle_path=path, threshold=threshold, n_patients=int(X.index.nunique()),
                       terms=model_terms(model))
    if key is not None:
        store_frames(store, FINAL_MODEL_NAMESPACE, key, {
            "bundle_files": bundle_files_frame(path),
            "summary": pd.DataFrame([{"threshold": final.threshold, "n_patients": final.n_patients}]),
            "terms": final.terms})
    return final


def chosen_estimator(settings: StudySettings, row: pd.Series,
                     clinical: ClinicalSpec | None = None) -> tuple[ModelConfiguration, BaseEstimator]:
    """The configuration of a results row and its unfitted estimator, built as the grid builds it."""
    configuration = ModelConfiguration(row["source"], tuple(str(row["modalities"]).split("+")), row["fusion"],
                                       row["classifier"])
    return configuration, estimator_for(settings, configuration, clinical)


def final_model_key(settings: StudySettings, configuration: ModelConfiguration, features: FeatureTables,
                    X: pd.DataFrame, y: pd.Series, groups: pd.Series, radiomics_params: dict,
                    tensors: dict[str, np.ndarray], file_hashes: FileHashCache) -> dict[str, Any]:
    """Everything the final model's bundle depends on, as plain values (hashed into its store key).

    The modelling table, labels and patient groups; the configuration and every setting that builds
    its estimator, threshold and bundle (the grid's arguments as `grid_cache_key` renders them, the
    PyRadiomics settings, backbone, views, clinical encoding, the study's name); the Grad-CAM
    tensors; the content of every image the intensity profiles may read (their SHA-256); the
    versions of the libraries; and the package's own source code, so that any change of code
    fits again.
    """
    rows = features.tables[configuration.kinds[0]]
    return {
        "configuration": configuration.key(),
        "arguments": grid_cache_key(grid_arguments(settings, list(settings.cohort.modalities), features.clinical),
                                    settings),
        "model_table": table_fingerprint(X),
        "labels": table_fingerprint(y.to_frame()),
        "groups": table_fingerprint(groups.to_frame()),
        "images": table_fingerprint(pd.DataFrame({"roi_id": rows["roi_id"], "modality": rows["modality"],
                                                  "image": [file_hashes.sha256(path) for path in rows["image"]],
                                                  "mask": [file_hashes.sha256(path) for path in rows["mask"]]})),
        "settings": {"radiomics_params": radiomics_params, "backbone": settings.deep.backbone,
                     "weights": settings.deep.weights, "views": settings.cohort.views, "name": settings.name,
                     "threshold": settings.threshold.model_dump(),
                     "clinical": features.clinical.record() if features.clinical is not None else None},
        "tensors": {name: hashlib.sha256(repr((value.dtype.str, value.shape)).encode()
                                         + np.ascontiguousarray(value).tobytes()).hexdigest()
                    for name, value in sorted(tensors.items())},
        "versions": library_versions(),
        "code": package_source_fingerprint(),
    }


"""One study run: every stage in order, into a new run folder, and what the run produced.

Stages, in order: cohort and QA, provenance, features (through the shared store), the experiment
grid in nested patient-grouped CV, the permuted-label canary, Grad-CAM heads (only when the chosen
model reads deep features), the final model (the configuration chosen by inner CV, refitted on all
patients, threshold frozen from inner out-of-fold predictions), what explains it (selection
frequency, weights, permutation importance, a gallery of right and wrong cases), and the report. QA findings, grid and canary results and the
final model's bundle are cached in the store under a key of their inputs, so a re-run with unchanged
inputs opens no image and fits nothing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlradiomics.evaluation.canary import GridCanaryVerdict
from dlradiomics.io.atomic import write_csv_atomic, write_yaml_atomic
from dlradiomics.report.study_report import StudyReportInputs, study_headline, write_study_report
from dlradiomics.store import FeatureStore
from dlradiomics.study.accounting import manifest_row_of, with_feature_failures
from dlradiomics.study.clinical import ClinicalSpec, add_clinical_table
from dlradiomics.study.explain import fit_gradcam_heads
from dlradiomics.study.interpretation import explain_chosen_model
from dlradiomics.study.features import compute_feature_tables, feature_kinds_for
from dlradiomics.study.preflight import check_feature_coverage, preflight_study
from dlradiomics.study.reference import reference_comparison, reference_scores
from dlradiomics.study.run_folder import (
    attach_log_file,
    create_run_folder,
    mark_run_complete,
    mark_run_failed,
    point_latest_at,
    write_provenance,
)
from dlradiomics.study.progress import GridProgressDisplay
from dlradiomics.study.protocols import run_paper_protocols, wants_paper_protocol
from dlradiomics.study.settings import StudySettings
from dlradiomics.study.site_validation import run_site_validation
from dlradiomics.study.stage_timer import StageTimer
from dlradiomics.study.stages import (
    chosen_estimator,
    fit_final_model,
    load_cohort,
    log_canary_verdict,
    run_grid_and_canary_cached,
)
from dlradiomics.versions import library_versions

logger = logging.getLogger(__name__)


@dataclass
class StudyResult:
    """What a run produced.

    Args:
        run_dir: the run folder (`<output>/runs/<timestamp>/`).
        report_path: the self-contained `report.html`.
        bundle_path: the final model bundle folder (None when no configuration completed).
        results: the long results table (one row per configuration).
        best: the configuration chosen by inner CV, with its out-of-fold metrics.
        stage_seconds: wall time of each stage.
        stage_cpu_seconds: CPU time of each stage (this process and its workers).
        canary_verdict: the permuted-label canary judged against chance (None without a canary).
        unused_rows: every manifest row the study did not use, with the reason.
        warnings: what the preflight checks found that did not stop the study.
        n_manifest_rows: rows in the manifest.
        headline: the report's headline as text lines (the chosen model, its AUC and operating point,
            the runner-up, coverage, the canary's verdict), for the end of the terminal output.
        no_model_reason: why no model was chosen (empty when one was).
    """

    run_dir: Path
    report_path: Path
    bundle_path: Path | None
    results: pd.DataFrame
    best: pd.Series | None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)
    canary_verdict: GridCanaryVerdict | None = None
    unused_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    n_manifest_rows: int = 0
    headline: list[str] = field(default_factory=list)
    no_model_reason: str = ""


def cases_per_outcome(examples: int) -> int:
    """Gallery cases per outcome (TP, FN, TN, FP) from the study's `report.gradcam_examples`."""
    return 0 if examples <= 0 else max(1, math.ceil(examples / 4))


def run_study(settings: StudySettings, *, progress: bool = True, opening: str | None = None) -> StudyResult:
    """Run every stage of a study into a new run folder.

    Args:
        settings: the validated study settings.
        progress: show a progress display for each long stage.
        opening: the report's first sentence (default: the study's `report.note`).

    Returns:
        The `StudyResult` with the paths of the report and the bundle.
    """
    timer = StageTimer(progress)
    # Everything that can be checked without opening an image, before a run folder exists.
    preflight = preflight_study(settings, radiomics_params=settings.radiomics.parameter_mapping)
    for warning in preflight.warnings:
        timer.console.print(f"[yellow]warning[/yellow]: {warning}")
    run = create_run_folder(settings.output)
    handler = attach_log_file(run)
    try:
        logger.info("study %s: run folder %s", settings.name, run.root)
        for warning in preflight.warnings:
            logger.warning("preflight: %s", warning)
        versions = library_versions()
        with timer.stage("cohort and QA"):
            cohort_stage = load_cohort(settings, progress=progress)
            write_provenance(run, settings.to_yaml_dict(), cohort_stage.table, settings.cohort.manifest,
                             versions=versions, hashes=cohort_stage.file_hashes)
            cohort_stage.file_hashes.save()
            write_csv_atomic(cohort_stage.qa_table, run.root / "qa.csv")
        radiomics_params = settings.radiomics.parameter_mapping()
        params_file = run.root / "radiomics_params.yaml"
        write_yaml_atomic(params_file, radiomics_params, sort_keys=True)
        kinds = feature_kinds_for(settings.feature_sources)
        with timer.stage(f"features ({' and '.join(kinds)}, through the store)"):
            features = compute_feature_tables(cohort_stage.table, kinds, store_dir=settings.store,
                                              radiomics_params=params_file, backbone=settings.deep.backbone,
                                              weights=settings.deep.weights, n_jobs=settings.n_jobs,
                                              weights_dir=settings.deep.weights_dir,
                                              progress=progress, scheduler=settings.scheduler)
            if settings.clinical is not None:
                # Checked by the preflight: every clinical value of a training patient reads cleanly.
                features.clinical = ClinicalSpec.learn(settings.clinical, cohort_stage.table)
                features.tables = add_clinical_table(features.tables, cohort_stage.table, features.clinical)
            write_csv_atomic(features.failures, run.root / "feature_failures.csv")
            cohort_stage.unused = with_feature_failures(cohort_stage.unused, features.failures, cohort_stage.table,
                                                        manifest_row_of(cohort_stage.cohort))
            write_csv_atomic(cohort_stage.unused, run.root / "unused_rows.csv")
            for warning in check_feature_coverage(cohort_stage.table, features.tables, features.failures, settings):
                logger.warning("after features: %s", warning)
        store = FeatureStore(settings.store)
        what = "experiment grid and permuted-label canary" if settings.report.canary else "experiment grid"
        with timer.stage(f"{what} (nested, patient-grouped CV)"), \
                GridProgressDisplay(what, timer.console) as grid_progress:
            grid_stage = run_grid_and_canary_cached(settings, features, cohort_stage.table, store,
                                                    progress=grid_progress)
            grid, canary = grid_stage.grid, grid_stage.canary
            write_csv_atomic(grid.fold_table, run.root / "folds.csv")
        if settings.baselines:
            with timer.stage(f"CNN baselines ({', '.join(settings.baselines)}), inside the same outer folds",
                             spinner=True):
                # Here, not at the top: the CNNs import torch, which a study without them never needs.
                from dlradiomics.study.baselines import with_cnn_baselines

                grid, _ = with_cnn_baselines(grid, settings, cohort_stage.table, store)
        write_csv_atomic(grid.oof, run.root / "oof_predictions.csv")
        log_canary_verdict(grid_stage)
        comparison = reference_comparison(settings, grid, cohort_stage.table)
        sites = None
        if settings.cv.group_column is not None and not grid.completed.empty:
            with timer.stage(f"leave-one-{settings.cv.group_column}-out validation", spinner=True):
                sites = run_site_validation(settings, grid, features, cohort_stage.table, store)
                write_csv_atomic(sites.oof, run.root / "site_oof_predictions.csv")
        paper_protocol = None
        if wants_paper_protocol(settings):
            with timer.stage("paper protocol (leaky, for comparison) on real and permuted labels", spinner=True):
                paper_protocol = run_paper_protocols(settings, features, cohort_stage.table)
        chosen = chosen_estimator(settings, grid.best, features.clinical) if grid.has_choice else None
        reads_deep = chosen is not None and "deep" in chosen[0].kinds
        gradcam_tensors: dict[str, np.ndarray] = {}
        if reads_deep:
            # Grad-CAM heads only for a chosen model that reads deep features: overlays of a CNN that
            # takes no part in the prediction would explain a different model.
            with timer.stage("Grad-CAM heads"):
                gradcam_tensors = fit_gradcam_heads(features.tables["deep"], list(settings.cohort.modalities),
                                                    seed=settings.cv.seed)
        final = explanation = None
        if chosen is not None:
            with timer.stage("final model"):
                final = fit_final_model(settings, grid, features, run, radiomics_params, gradcam_tensors,
                                        progress=progress, store=store, file_hashes=cohort_stage.file_hashes)
            with timer.stage("explaining the chosen model"):
                gradcam = ({"tensors": gradcam_tensors, "backbone": settings.deep.backbone,
                            "weights": settings.deep.weights, "weights_dir": settings.deep.weights_dir}
                           if reads_deep else None)
                explanation = explain_chosen_model(
                    grid, features, cohort_stage.table, configuration=chosen[0], estimator=chosen[1],
                    final_terms=final.terms, cases_per_outcome=cases_per_outcome(settings.report.gradcam_examples),
                    out_dir=run.root / "gallery", gradcam=gradcam, seed=settings.cv.seed, progress=progress)
        with timer.stage("report", spinner=True):
            inputs = StudyReportInputs(
                settings=settings, run=run, cohort=cohort_stage, features=features, grid=grid, canary=canary,
                final=final, opening=opening or settings.report.note, versions=versions,
                grid_cached=grid_stage.grid_cached, stage_seconds=dict(timer.seconds),
                stage_cpu_seconds=dict(timer.cpu_seconds), explanation=explanation,
                radiomics_settings=radiomics_params.get("setting", {}), paper_protocol=paper_protocol,
                clinical=comparison, reference_scores=reference_scores(settings, cohort_stage.table), sites=sites)
            headline = study_headline(inputs)
            report_path = write_study_report(inputs, headline)
        mark_run_complete(run)
        point_latest_at(run)
        return StudyResult(run_dir=run.root, report_path=report_path,
                           bundle_path=final.bundle_path if final else None, results=grid.results,
                           best=final.configuration if final else None, stage_seconds=dict(timer.seconds),
                           stage_cpu_seconds=dict(timer.cpu_seconds), canary_verdict=grid_stage.verdict,
                           unused_rows=cohort_stage.unused, warnings=list(preflight.warnings),
                           n_manifest_rows=len(cohort_stage.cohort.table) + len(cohort_stage.cohort.rejected),
                           headline=headline.lines() if headline is not None else [],
                           # The command explains an empty grid from its notes; a grid whose models all
                           # score part of the cohort is explained by the coverage rule.
                           no_model_reason=grid.no_choice_reason() if not grid.completed.empty else "")
    except BaseException as error:
        mark_run_failed(run, error)
        raise
    finally:
        logging.getLogger("dlradiomics").removeHandler(handler)
        handler.close()

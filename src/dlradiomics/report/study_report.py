"""The study report: the answer first, then every section, table and figure a paper needs.

It opens with the headline (the chosen model, its AUC and operating point, the runner-up, coverage,
the canary's verdict) and a forest plot of every configuration. Then, in the order a reader needs
(TRIPOD+AI): the cohort (Table 1) and how the data were checked, the methods of what this study ran
(with units and discretisation), all results (not only the winner), the chosen model at its frozen
threshold, what explains it, the leakage canary, the reporting checklist filled from the run, and
provenance. Every table is also written as CSV and LaTeX beside the report.

Other parts of a study add a section by writing a function that returns a `ReportSection` from
typed inputs in `StudyReportInputs` and listing it in `report_sections` where its comment says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dlradiomics.evaluation import ClinicalComparison, GridResult, SiteValidation, delong_test, model_roles
from dlradiomics.evaluation.calibration import calibration_slope_intercept
from dlradiomics.io.readers import RASTER_SUFFIXES
from dlradiomics.report.clinical_sections import reference_section, site_validation_section
from dlradiomics.report.checklist import (
    ANSWERED,
    CHECKLIST_NAME,
    NOT_APPLICABLE,
    NOT_REPORTED,
    PARTLY,
    ChecklistAnswer,
    fill_checklist,
)
from dlradiomics.report.explanation import EXPLANATION_HEADING, ModelExplanation, explanation_section
from dlradiomics.report.figures import (
    calibration_figure,
    confusion_figure,
    decision_curve_figure,
    forest_figure,
    roc_figure,
    save_figure,
)
from dlradiomics.report.headline import (
    Headline,
    ReferenceOperatingPoint,
    build_headline,
    configuration_label,
    format_p,
    reference_from_comparison,
)
from dlradiomics.report.html import ReportFigure, ReportSection, ReportTable, section_anchor, write_report
from dlradiomics.report.model_choice import eligibility_sentence, nested_selection_sentence, results_with_eligibility
from dlradiomics.report.paper_protocol import paper_protocol_section
from dlradiomics.report.table_one import table_one, table_one_variables

RESULT_COLUMNS = ["source", "modalities", "fusion", "classifier", "status", "n_patients", "inner_auc", "auc",
                  "auc_ci_low", "auc_ci_high", "accuracy", "sensitivity", "specificity", "balanced_accuracy",
                  "brier", "note"]
MAX_CURVES = 6
DELONG_MODELS = 5
FUSION_WORDS = {
    "single": "each modality alone",
    "early": "early fusion (the modalities' features concatenated, then one model)",
    "ensemble": "a weighted ensemble (one model per block; weights = softmax of inner-CV accuracies)",
    "stacking": "stacking (one model per block; a logistic meta-learner on their inner out-of-fold probabilities)",
}
HEADINGS = {"cohort": "Cohort and data quality", "methods": "Methods", "results": "Results", "roc": "ROC curves",
            "chosen": "Chosen model", "explanation": EXPLANATION_HEADING, "canary": "Leakage canary",
            "checklist": "Reporting checklist", "provenance": "Provenance"}


@dataclass
class StudyReportInputs:
    """Everything a finished run hands to the report; the report imports nothing of the study.

    Args:
        settings: the study settings, read by attribute (`name`, `cv`, `threshold`, `radiomics`,
            `deep`, `selection`, `classifiers`, `feature_sources`, `fusion`, `report`, `cohort`).
        run: the run folder (`root`, `report_dir`, `figures_dir`).
        cohort: the cohort stage (`table`, `qa_summary`, `cohort.problems`, `unused`).
        features: the feature tables (`failures`).
        grid: the experiment grid's result.
        canary: the grid on permuted labels, or None when not run.
        final: the final model (`n_patients`, `threshold`, `bundle_path`, `from_store`), or None when no
            configuration completed.
        opening: a caveat the reader must see first (the study's `report.note`).
        versions: library versions of the run, by package (as in the run's versions.json).
        grid_cached: whether the grid came from the store.
        stage_seconds: wall time of each stage so far.
        stage_cpu_seconds: CPU time of each stage so far (the run's process and its workers).
        explanation: what explains the chosen model (weights, selection frequency, importance, cases).
        reference: a clinical reference operating point, when the study gives one.
        radiomics_settings: the PyRadiomics settings the features were computed with (`setting` section).
        paper_protocol: the paper's leaky protocol on real and permuted labels (`real`, `permuted`:
            `PaperProtocolResult`), when the study file asks for it (``protocols: [nested, paper]``).
        clinical: the reference operating point beside the models (None without a reference); it also
            fills the headline's `reference` when that is not given.
        reference_scores: the reference score per patient (with `clinical`).
        sites: the leave-one-site-out validation (None without a site column).
    """

    settings: Any
    run: Any
    cohort: Any
    features: Any
    grid: GridResult
    canary: GridResult | None
    final: Any
    opening: str | None
    versions: Mapping[str, str] = field(default_factory=dict)
    grid_cached: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)
    explanation: ModelExplanation | None = None
    reference: ReferenceOperatingPoint | None = None
    radiomics_settings: Mapping[str, Any] = field(default_factory=dict)
    paper_protocol: Any = None
    clinical: ClinicalComparison | None = None
    reference_scores: pd.Series | None = None
    sites: SiteValidation | None = None


def _with_labels(oof: pd.DataFrame) -> pd.DataFrame:
    labelled = oof.copy()
    labelled["configuration"] = [configuration_label(row) for _, row in labelled.iterrows()]
    return labelled[labelled["repeat"] == labelled["repeat"].min()]


def _ran(inputs: StudyReportInputs, column: str) -> list[str]:
    """Values of a configuration column among the configurations that ran, in settings order."""
    completed = inputs.grid.completed
    return list(dict.fromkeys(completed[column].astype(str))) if len(completed) else []


def threshold_rule_words(settings: Any) -> str:
    """The threshold rule in words, as the headline and the methods say it."""
    if settings.threshold.rule == "youden":
        return "thresholds frozen on training folds by Youden's J"
    return f"thresholds frozen on training folds at sensitivity {settings.threshold.value}"


def study_headline(inputs: StudyReportInputs) -> Headline | None:
    """The headline of a finished run (None when no configuration completed)."""
    return build_headline(inputs.grid, patients=inputs.cohort.table["patient_id"].nunique(),
                          threshold_rule=threshold_rule_words(inputs.settings), canary=inputs.canary,
                          reference=inputs.reference or reference_operating_point(inputs),
                          n_boot=inputs.settings.report.bootstrap, seed=inputs.settings.cv.seed)


def reference_operating_point(inputs: StudyReportInputs) -> ReferenceOperatingPoint | None:
    """The headline's reference: the study's reference rule against the chosen model on the same patients."""
    if inputs.clinical is None or not inputs.grid.has_choice:
        return None
    return reference_from_comparison(inputs.clinical.table, configuration_label(inputs.grid.best))


def cohort_section(inputs: StudyReportInputs) -> ReportSection:
    """Table 1, modality combinations, QA findings and every row left out."""
    table = inputs.cohort.table
    exclude = [inputs.settings.cv.fold_column] if inputs.settings.cv.fold_column else []
    variables, left_out = table_one_variables(table, exclude=exclude)
    combinations = (table.groupby("patient_id").agg(modalities=("modality", lambda m: "+".join(sorted(set(m)))),
                                                    label=("label", "first"))
                    .groupby(["modalities", "label"]).size().unstack(fill_value=0)
                    .rename(columns={0: "benign", 1: "malignant"}).rename_axis(columns=None).reset_index())
    summary = inputs.cohort.qa_summary
    flags = pd.DataFrame(sorted(summary.flag_counts.items()), columns=["QA flag", "rows"])
    pairs = summary.duplicate_pairs
    across = pairs[~pairs["same_patient"]] if len(pairs) else pairs
    problems = pd.DataFrame([{"row": p.row, "patient_id": p.patient_id, "column": p.column, "problem": p.message}
                             for p in inputs.cohort.cohort.problems])
    unused = getattr(inputs.cohort, "unused", None)
    paragraphs = [
        f"{table['patient_id'].nunique()} patients, {len(table)} images, modalities "
        f"{', '.join(sorted(table['modality'].unique()))}. Table 1 counts each variable per patient when it is "
        "constant within patients, else per image (column 'unit'); categorical variables: Pearson's chi-square, or "
        "Fisher's exact test when an expected count is below 5; continuous: median (IQR) and the Mann-Whitney U "
        "test." + (f" Not summarised: {'; '.join(left_out)}." if left_out else ""),
        unused_rows_sentence(unused, len(inputs.cohort.cohort.rejected))
        + f" QA checked {summary.n_rows} rows and flagged {summary.n_flagged}; {len(across)} duplicate or "
        "near-duplicate image pair(s) span different patients (a pair with different labels is a labelling problem; "
        "a pair across train and test leaks).",
    ]
    if len(inputs.cohort.table["modality"].unique()) > 1:
        paragraphs.insert(1, "Patients lacking a modality stay in the study: late fusion (ensemble, stacking) uses "
                             "the modalities each patient has; early fusion scores only patients who have every "
                             "modality of its set, and says how many it could not score.")
    tables = [ReportTable("table1", "Table 1: cohort characteristics by class",
                          table_one(table, variables, seed=inputs.settings.cv.seed)),
              ReportTable("cohort_combinations", "Patients per combination of modalities", combinations)]
    if len(flags):
        tables.append(ReportTable("qa_flags", "QA flags", flags))
    if len(across):
        tables.append(ReportTable("qa_duplicates_across_patients", "Duplicate images across patients", across))
    if len(problems):
        tables.append(ReportTable("manifest_problems", "Manifest rows left out", problems))
    if unused is not None and len(unused):
        tables.append(ReportTable("unused_rows", "Every manifest row this study did not use, and why", unused))
    failures = inputs.features.failures
    if len(failures):
        tables.append(ReportTable("feature_failures", "ROIs whose features could not be computed", failures))
    return ReportSection(HEADINGS["cohort"], paragraphs=paragraphs, tables=tables)


def unused_rows_sentence(unused: pd.DataFrame | None, n_rejected: int) -> str:
    """One sentence counting the manifest rows a study did not use, by reason."""
    if unused is None:
        return f"Manifest checks left out {n_rejected} row(s)."
    if unused.empty:
        return "Every manifest row was used."
    counts = unused["stage"].astype(str).str.split(" ", n=1).str[0].value_counts()
    words = {"manifest": "rejected by the manifest checks", "modality": "of modalities the study does not use",
             "view": "of views the study does not use (cohort.views)", "features": "whose features could not be computed"}
    parts = ", ".join(f"{count} {words.get(stage, stage)}" for stage, count in counts.items())
    return f"{len(unused)} manifest row(s) were not used: {parts} (each is listed below with its reason)."


def _dimension_words(dimension: Any) -> str:
    """Where radiomic features were computed, in words, from `radiomics.dimension`."""
    largest = "in 2D on the slice with the largest lesion area"
    volume = "in 3D on the whole lesion volume (3D shape and texture, IBSI's 3D configuration)"
    if isinstance(dimension, dict):
        in_3d = sorted(modality for modality, value in dimension.items() if value == "3D")
        if in_3d:
            return f"{volume} for {', '.join(in_3d)}, otherwise {largest}"
        return largest
    return volume if dimension == "3D" else largest


def _views_words(views: Any) -> str:
    """The study's view filter, in words ('' when it has none)."""
    if not views:
        return ""
    chosen = "; ".join(f"{modality}: {', '.join(names)}" for modality, names in views.items())
    return f" Views used (cohort.views; other views left out and listed): {chosen}."


def _dlr_method(s: Any) -> str:
    """How DLR fusion compressed the features, in words (component counts are ceilings per training fold)."""
    if s.dlr.composition == "whole_table":
        return f"one PCA of all radiomic and deep features to at most {s.dlr.whole_table_components} components"
    return (f"deep features to {s.deep.pca_components} components per modality, then a deep part of at most "
            f"{s.dlr.deep_components} and a radiomic part of at most {s.dlr.radiomic_components} components "
            "(the paper's composition; smaller training folds keep fewer)")


def methods_section(inputs: StudyReportInputs) -> ReportSection:
    """The methods of what this study ran (sources, fusions and classifiers that ran, nothing else), with
    units and discretisation."""
    s = inputs.settings
    sources = _ran(inputs, "source") or list(s.feature_sources)
    fusions = _ran(inputs, "fusion") or list(s.fusion)
    classifiers = _ran(inputs, "classifier") or [_classifier_label(entry) for entry in s.classifiers]
    own = {entry.name: entry.estimator for entry in s.classifiers if not isinstance(entry, str)}
    uses_radiomic = bool({"radiomic", "dlr"} & set(sources))
    uses_deep = bool({"deep", "dlr"} & set(sources))
    features = []
    if uses_radiomic:
        features.append(f"Handcrafted features: PyRadiomics on the lesion mask, {_dimension_words(s.radiomics.dimension)} "
                        "(settings in radiomics_params.yaml"
                        + (f", file {s.radiomics.params}" if s.radiomics.params else ", package defaults")
                        + (f", overrides {s.radiomics.overrides}" if s.radiomics.overrides else "") + ").")
    if uses_deep:
        features.append(f"Deep features: the global-average-pooled embedding of a frozen ImageNet {s.deep.backbone} "
                        f"(weights '{s.deep.weights}') on a rectangular crop around the lesion (on the slice with the largest "
                        "lesion area for volumes).")
    features.append(f"Features are cached per image content and setting.{_views_words(s.cohort.views)}")
    models = []
    if uses_radiomic:
        models.append(f"Radiomic blocks: Mann-Whitney U (p < {s.selection.mann_whitney_p}), Spearman redundancy "
                      f"filter (|rho| > {s.selection.correlation_threshold})"
                      + (", LASSO" if s.selection.lasso else "") + ", each fitted on training folds.")
    if uses_deep:
        models.append(f"Deep blocks: PCA to {s.deep.pca_components} components per modality.")
    if "dlr" in sources:
        models.append(f"DLR fusion: {_dlr_method(s)}.")
    models.append(f"Classifiers: {', '.join(f'{name} ({own[name]})' if name in own else name for name in classifiers)}."
                  f" Feature sources: {', '.join(sources)}. Fusion: "
                  + "; ".join(FUSION_WORDS.get(fusion, fusion) for fusion in fusions) + ".")
    if (inputs.grid.completed["modalities"].astype(str).str.contains(r"\+").eq(False).any()
            if len(inputs.grid.completed) else True):
        models.append("A patient's images of one modality are averaged to one patient probability.")
    folds = _fold_words(s)
    evaluation = (
        f"Outer loop: {folds}; inner loop: {s.cv.inner_folds}-fold patient-grouped CV inside each training set for "
        "every fitted step (imputation, scaling, selection, PCA"
        + (", ensemble weights, meta-learner" if {"ensemble", "stacking"} & set(fusions) else "")
        + f") and for the operating threshold ({threshold_rule_words(s).replace('thresholds frozen on training folds ', '')}"
        "), frozen before the test patients are scored. 95% CIs: patient-level stratified bootstrap "
        f"({s.report.bootstrap} resamples; PPV and NPV over the resamples where they are defined); DeLong's test "
        "between models on the same patients; calibration slope and intercept by logistic recalibration (Wald CIs). "
        "The chosen model has the highest mean inner-CV AUC (test folds never consulted); it is refitted on all "
        "patients for the bundle, with its threshold frozen from inner out-of-fold predictions. No resampling or "
        "class weighting was used."
        + (" Leakage canary: the configurations listed under Leakage canary rerun, with the choice by inner CV, on "
           "labels permuted across patients." if inputs.canary is not None else ""))
    versions = ", ".join(f"{name} {version}" for name, version in _versions(inputs).items())
    paragraphs = ["Features. " + " ".join(features), "Models. " + " ".join(models), "Evaluation. " + evaluation,
                  *units_notes(inputs, uses_radiomic, uses_deep), f"Software: {versions}."]
    clinical = _clinical_methods(s)
    if clinical:
        paragraphs.insert(2, clinical)
    return ReportSection(HEADINGS["methods"], paragraphs=paragraphs)


def _clinical_methods(s: Any) -> str:
    """What the study did with clinical variables, a reference and sites (empty when none of them)."""
    parts = []
    clinical = getattr(s, "clinical", None)
    if clinical is not None:
        categorical = [c for c in clinical.columns if c in clinical.categorical]
        rules = ", ".join(f"{column}: {rule}" for column, rule in clinical.per_patient.items())
        parts.append(f"Clinical variables from the manifest: {', '.join(clinical.columns)}"
                     + (f" ({', '.join(categorical)} categorical, one-hot encoded inside each training fold)"
                        if categorical else " (numeric)")
                     + "; one value per patient" + (f" (differing images combined: {rules})" if rules else "")
                     + "; missing values imputed inside each training fold (median or most frequent category) with "
                       "a missing-value indicator. They form one feature block (feature sources "
                     + ", ".join(source for source in s.feature_sources if "clinical" in source) + ").")
    reference = getattr(s, "reference", None)
    if reference is not None:
        parts.append(f"Reference operating point: {reference.label()} (manifest column '{reference.column}', a "
                     f"patient called malignant at {reference.positive_at:g} or more), compared with the models on "
                     "the same patients by McNemar's test (benign and malignant patients apart) and DeLong's test.")
    choice = getattr(getattr(s, "choice", None), "by", "auc")
    if choice != "auc":
        parts.append("The chosen model has the highest mean inner-CV specificity at the target sensitivity "
                     "(ties broken by inner-CV AUC).")
    group_column = getattr(s.cv, "group_column", None)
    if group_column:
        parts.append(f"The chosen configurations were also cross-validated leaving one '{group_column}' out at a "
                     "time.")
    return " ".join(parts)


def units_notes(inputs: StudyReportInputs, uses_radiomic: bool, uses_deep: bool) -> list[str]:
    """Honest notes on units, discretisation and intensities, from the images and settings the study used."""
    table = inputs.cohort.table
    suffixes = table["image"].astype(str).str.lower()
    raster = suffixes.str.endswith(RASTER_SUFFIXES)
    notes = []
    if uses_radiomic:
        raster_modalities = sorted(table.loc[raster, "modality"].astype(str).unique())
        physical_modalities = sorted(table.loc[~raster, "modality"].astype(str).unique())
        spacing = []
        if raster_modalities:
            spacing.append(f"{', '.join(raster_modalities)} images are raster files (PNG, JPEG, TIFF...) that carry no "
                           "physical spacing: PyRadiomics reads them with spacing 1, so shape features (area, "
                           "perimeter, diameters) are in pixels and pixels squared, not mm, and differ between "
                           "scanners and zoom settings")
        if physical_modalities:
            spacing.append(f"{', '.join(physical_modalities)} images (DICOM, NIfTI, NRRD) carry their spacing: shape "
                           "features are in mm")
        setting = dict(inputs.radiomics_settings or {})
        bin_width = setting.get("binWidth", 25)
        bin_count = setting.get("binCount")
        discretisation = (f"grey levels discretised to {bin_count} bins per ROI" if bin_count else
                          f"grey levels discretised with a fixed bin width of {bin_width} (on the 8-bit scale of "
                          "raster images: about 256 / bin width levels over the full range)")
        resampled = setting.get("resampledPixelSpacing")
        notes.append("Units and discretisation. " + "; ".join(spacing) + ". Texture features: " + discretisation
                     + ("; images not resampled" if not resampled else f"; images resampled to {resampled}")
                     + ("; intensities not normalised" if not setting.get("normalize") else "; intensities normalised "
                        "by PyRadiomics") + ".")
    notes.append("Intensity convention: integer raster images are read on the 8-bit scale (value x 255 / "
                 "(2^bits - 1)), so an 8-bit PNG and its 16-bit copy give the same features; DICOM, NIfTI and NRRD "
                 "are read as stored." + (" Deep features see each crop resized and normalised for the backbone."
                                          if uses_deep else ""))
    return notes


def _classifier_label(entry: Any) -> str:
    # A study's own classifier (`{name, estimator, params}` in the study file) is named with its class.
    return entry if isinstance(entry, str) else f"{entry.name} ({entry.estimator})"


def _versions(inputs: StudyReportInputs) -> dict[str, str]:
    return {name: inputs.versions[name] for name in ("dlradiomics", "scikit-learn", "pyradiomics-bhklab", "torch",
                                                     "timm") if name in inputs.versions}


def results_sections(inputs: StudyReportInputs) -> list[ReportSection]:
    """The long results table, paper-style tables, ROC curves per comparison."""
    grid = inputs.grid
    results = results_with_eligibility(grid, RESULT_COLUMNS).sort_values(["status", "inner_auc"],
                                                                         ascending=[True, False])
    tables = [ReportTable("results_long", "Every configuration (out-of-fold, patient level; 95% CI)", results)]
    if not grid.completed.empty:
        tables.insert(0, ReportTable("summary_auc", "AUC (95% CI) by source, modalities and fusion (columns: "
                                     "classifiers)", grid.auc_table().rename_axis(columns=None).reset_index()))
        tables.insert(1, ReportTable("summary_best_classifier", "Best classifier per setting (by inner-CV AUC)",
                                     grid.best_per_setting()))
    sections = [ReportSection(HEADINGS["results"], paragraphs=[
        "Every configuration is reported, not only the best; each row's metrics come from out-of-fold predictions "
        "at thresholds frozen on training folds; n_patients counts the patients each could score." +
        (" (Grid results were read back from the feature store: inputs unchanged since an earlier run.)"
         if inputs.grid_cached else ""),
        eligibility_sentence(grid)], tables=tables)]
    if grid.completed.empty:
        return sections
    figures = []
    oof = _with_labels(grid.oof)
    best_per_setting = grid.best_per_setting()
    for source, rows in best_per_setting.groupby("source", sort=False):
        chosen = rows.sort_values("inner_auc", ascending=False).head(MAX_CURVES)
        labels = [configuration_label(row) for _, row in chosen.iterrows()]
        path = inputs.run.figures_dir / f"roc_{source}.png"
        save_figure(roc_figure(oof, labels, f"ROC: {source} features (best classifier per setting)"), path)
        figures.append(ReportFigure(f"ROC curves, {source} features: each modality set and fusion with its "
                                    "best classifier by inner CV.", path))
    fusion_best = (best_per_setting.sort_values("inner_auc", ascending=False).groupby("fusion", sort=False).head(1))
    if len(fusion_best) > 1:
        path = inputs.run.figures_dir / "roc_fusions.png"
        save_figure(roc_figure(oof, [configuration_label(row) for _, row in fusion_best.iterrows()],
                               "ROC: best of each fusion"), path)
        figures.append(ReportFigure("ROC curves: the best configuration of each fusion strategy.", path))
    sections.append(ReportSection(HEADINGS["roc"], figures=figures))
    return sections


def chosen_model_section(inputs: StudyReportInputs) -> ReportSection:
    """The chosen model: metrics, confusion matrix at its frozen thresholds, calibration, DCA, DeLong."""
    grid, final = inputs.grid, inputs.final
    best = grid.best
    best_label = configuration_label(best)
    oof = _with_labels(grid.oof)
    best_rows = oof[oof["configuration"] == best_label]
    figures_dir = inputs.run.figures_dir
    predicted = (best_rows["prob"] >= best_rows["threshold"]).astype(int)
    save_figure(confusion_figure(best_rows["y_true"], predicted, f"{best_label}\n(out-of-fold, frozen thresholds)"),
                figures_dir / "confusion_matrix.png")
    top = grid.best_per_setting().sort_values("inner_auc", ascending=False)
    compared = [best_label] + [label for label in (configuration_label(row) for _, row in top.iterrows())
                               if label != best_label]
    compared = compared[:DELONG_MODELS]
    save_figure(decision_curve_figure(oof, compared[:3]), figures_dir / "decision_curve.png")
    save_figure(calibration_figure(oof, compared[:3]), figures_dir / "calibration.png")
    calibration_rows = []
    for label in compared[:3]:
        rows = oof[oof["configuration"] == label]
        fit = calibration_slope_intercept(rows["y_true"].to_numpy(), rows["prob"].to_numpy())
        calibration_rows.append({"configuration": label, "patients": fit.n, "slope": fit.slope,
                                 "slope CI low": fit.slope_ci_low, "slope CI high": fit.slope_ci_high,
                                 "intercept": fit.intercept, "intercept CI low": fit.intercept_ci_low,
                                 "intercept CI high": fit.intercept_ci_high, "note": fit.note})

    delong_rows = []
    best_by_patient = best_rows.set_index("patient_id")
    for other in compared[1:]:
        other_rows = oof[oof["configuration"] == other].set_index("patient_id")
        common = best_by_patient.index.intersection(other_rows.index)
        if len(common) < 4 or best_by_patient.loc[common, "y_true"].nunique() < 2:
            continue
        comparison = delong_test(best_by_patient.loc[common, "y_true"].to_numpy(),
                                 best_by_patient.loc[common, "prob"].to_numpy(), other_rows.loc[common, "prob"].to_numpy())
        delong_rows.append({"model A (chosen)": best_label, "model B": other, "patients": len(common),
                            "AUC A": comparison.auc_a, "AUC B": comparison.auc_b, "difference": comparison.difference,
                            "difference CI low": comparison.ci_low, "difference CI high": comparison.ci_high,
                            "p (DeLong)": format_p(comparison.p_value)})
    metrics = ("auc", "accuracy", "sensitivity", "specificity", "balanced_accuracy", "ppv", "npv", "f1", "brier")
    metric_table = pd.DataFrame([{"metric": metric, "estimate": best.get(metric),
                                  "95% CI low": best.get(f"{metric}_ci_low"), "95% CI high": best.get(f"{metric}_ci_high")}
                                 for metric in metrics if metric in best.index])
    eligible_words = ("among configurations that score every patient" if grid.require_full_coverage
                      else "among every configuration (coverage not required)")
    paragraphs = [f"Chosen by {grid.selection_rule}, {eligible_words}: {best_label}; out-of-fold AUC "
                  f"{best['auc']:.3f} ({best['auc_ci_low']:.3f}-{best['auc_ci_high']:.3f}) on "
                  f"{int(best['n_patients'])} patients.",
                  nested_selection_sentence(grid, n_boot=inputs.settings.report.bootstrap,
                                            seed=inputs.settings.cv.seed)]
    if final is not None:
        paragraphs.append(f"Refitted on all {final.n_patients} patients, with threshold {final.threshold:.3f} frozen "
                          f"from inner out-of-fold predictions; saved as the bundle {Path(final.bundle_path).name}/ "
                          "(use `dlradiomics predict`)." +
                          (" (Its files were read back from the feature store: an earlier run fitted it on the same "
                           "inputs.)" if getattr(final, "from_store", False) else ""))
    slope_text = "; ".join(f"{row['configuration']}: slope {row['slope']:.2f}, intercept {row['intercept']:.2f}"
                           for row in calibration_rows if row["note"] == "")
    figures = [ReportFigure("Confusion matrix of the chosen model: out-of-fold predictions at each fold's frozen "
                            "threshold; each cell's share of its true class (row).", figures_dir / "confusion_matrix.png"),
               ReportFigure("Calibration of out-of-fold probabilities (quantile bins); the legend gives each model's "
                            "calibration slope (ideal 1) and intercept (ideal 0)." + (f" {slope_text}." if slope_text
                                                                                     else ""),
                            figures_dir / "calibration.png"),
               ReportFigure("Decision-curve analysis (net benefit against treat-all and treat-none).",
                            figures_dir / "decision_curve.png")]
    tables = [ReportTable("chosen_model_metrics", "Chosen model: out-of-fold metrics with 95% CI", metric_table),
              ReportTable("calibration", "Calibration slope and intercept by logistic recalibration (95% Wald CI)",
                          pd.DataFrame(calibration_rows))]
    if delong_rows:
        tables.append(ReportTable("delong", "DeLong comparisons: chosen model against the next best settings",
                                  pd.DataFrame(delong_rows)))
    return ReportSection(HEADINGS["chosen"], paragraphs=paragraphs, tables=tables, figures=figures)


def clinical_sections(inputs: StudyReportInputs) -> list[ReportSection]:
    """The reference operating point beside the models, and the leave-one-site-out validation, when the study has them."""
    sections = []
    s = inputs.settings
    if inputs.clinical is not None:
        first_repeat = inputs.grid.oof["repeat"].min()
        roles = {role: rows[rows["repeat"] == first_repeat] for role, rows in
                 ((role, inputs.grid.predictions_of(configuration))
                  for role, configuration in model_roles(inputs.grid).items())}
        operating_point = ("the threshold reaching sensitivity " + f"{s.threshold.value:g} on training patients"
                           if s.threshold.rule == "sensitivity" else "the Youden threshold of training patients")
        sections.append(reference_section(inputs.clinical, role_predictions=roles,
                                          reference_scores=inputs.reference_scores, figures_dir=inputs.run.figures_dir,
                                          operating_point=operating_point, selection_rule=inputs.grid.selection_rule))
    if inputs.sites is not None:
        sections.append(site_validation_section(inputs.sites, main_results=inputs.grid.completed,
                                                main_folds=_fold_words(s)))
    return sections


def _fold_words(s: Any) -> str:
    return (f"the manifest's fold column '{s.cv.fold_column}'" if s.cv.fold_column else
            f"the split file {s.cv.split_file}" if s.cv.split_file else
            f"{s.cv.outer_folds}-fold stratified, patient-grouped CV repeated {s.cv.repeats} time(s) from seed "
            f"{s.cv.seed}")


def canary_section(inputs: StudyReportInputs, headline: Headline | None) -> ReportSection:
    """The permuted-label canary: its verdict first, then every configuration's AUC."""
    canary = inputs.canary
    if canary is None or canary.completed.empty:
        return ReportSection(HEADINGS["canary"], paragraphs=["The permuted-label canary was not run."])
    completed = canary.completed
    aucs = completed["auc"]
    within = ((completed["auc_ci_low"] <= 0.5) & (completed["auc_ci_high"] >= 0.5)).mean()
    paragraphs = []
    if headline is not None and headline.canary is not None:
        paragraphs.append("Verdict: " + headline.canary.describe() + ".")
    paragraphs.append(f"Configurations rerun on labels permuted across patients: AUC mean {aucs.mean():.3f}, range "
                      f"{aucs.min():.3f}-{aucs.max():.3f} over {len(completed)} configuration(s); {within:.0%} of their "
                      "95% CIs contain 0.5. With nothing to learn, an honest pipeline scores near 0.5; a pipeline that "
                      "leaks test information into training scores above it, and one that learns from how patients "
                      "were split scores below it.")
    columns = ["source", "modalities", "fusion", "classifier", "auc", "auc_ci_low", "auc_ci_high"]
    return ReportSection(HEADINGS["canary"], paragraphs=paragraphs,
                         tables=[ReportTable("canary", "Permuted-label AUCs", completed[columns])])


def checklist_section(inputs: StudyReportInputs) -> ReportSection:
    """TRIPOD+AI filled from the run: each item with the section answering it, or why not."""
    table = fill_checklist(checklist_answers(inputs))
    counts = table["status"].value_counts()
    return ReportSection(HEADINGS["checklist"], paragraphs=[
        f"{CHECKLIST_NAME}, filled from this run: {counts.get(ANSWERED, 0)} items answered here, "
        f"{counts.get(PARTLY, 0)} partly, {counts.get(NOT_APPLICABLE, 0)} not applicable, "
        f"{counts.get(NOT_REPORTED, 0)} not reported (a run cannot know its study's context, dates, ethics, funding "
        "or interpretation: the authors must add them). 'where' links to the section of this report."],
        tables=[ReportTable("tripod_ai_checklist", "TRIPOD+AI checklist", table, link_column="where")])


def checklist_answers(inputs: StudyReportInputs) -> dict[str, ChecklistAnswer]:
    """How this report answers each TRIPOD+AI item (items not listed are "not reported")."""
    anchor = {key: section_anchor(heading) for key, heading in HEADINGS.items()}
    s = inputs.settings
    extra_columns = table_one_variables(inputs.cohort.table)[0]
    group = "group" in {variable.name for variable in extra_columns}
    answers = {
        "4": ChecklistAnswer(PARTLY, anchor["methods"], "development with internal validation (nested, patient-"
                                                        "grouped CV); the study's aims are the authors' to state"),
        "5a": ChecklistAnswer(PARTLY, anchor["cohort"], "the manifest and its rows are listed; where the data come "
                                                        "from and how representative they are is the authors'"),
        "6b": ChecklistAnswer(PARTLY, anchor["cohort"], "rows left out and why are listed; clinical eligibility "
                                                        "criteria are the authors'"),
        "6c": ChecklistAnswer(NOT_APPLICABLE, note="a diagnostic model of lesions at imaging, before treatment"),
        "7": ChecklistAnswer(ANSWERED, anchor["cohort"], "QA of every image and mask (sizes, empty or tiny masks, "
                                                         "duplicates), rows left out with reasons"),
        "8a": ChecklistAnswer(PARTLY, anchor["cohort"], "the label (benign 0 / malignant 1) as the manifest gives "
                                                        "it; how it was assessed (e.g. histopathology) is the authors'"),
        "9a": ChecklistAnswer(ANSWERED, anchor["methods"], "every feature PyRadiomics computes (and/or the CNN's "
                                                           "embedding), selected inside training folds only"),
        "9b": ChecklistAnswer(ANSWERED, anchor["methods"], "feature settings, units and discretisation"),
        "10": ChecklistAnswer(PARTLY, anchor["cohort"], "the patients and events available; no sample size "
                                                        "calculation"),
        "11": ChecklistAnswer(ANSWERED, anchor["cohort"], "rows left out listed with reasons; missing feature "
                                                          "values imputed with the training median inside each fold; "
                                                          "patients lacking a modality kept (late fusion)"),
        "12a": ChecklistAnswer(ANSWERED, anchor["methods"], "nested, patient-grouped cross-validation"),
        "12b": ChecklistAnswer(ANSWERED, anchor["methods"], "median imputation and standardisation fitted on "
                                                            "training folds"),
        "12c": ChecklistAnswer(ANSWERED, anchor["methods"], "every configuration, selection and fusion step"),
        "12d": (ChecklistAnswer(PARTLY, anchor["cohort"], "sites/groups are counted in Table 1; performance by site "
                                                          "is not estimated")
                if group else ChecklistAnswer(NOT_REPORTED, note="the manifest names no site or group column")),
        "12e": ChecklistAnswer(ANSWERED, anchor["chosen"], "AUC, sensitivity, specificity and more with bootstrap "
                                                           "CIs; calibration slope and intercept; decision curves; "
                                                           "DeLong comparisons"),
        "12f": ChecklistAnswer(NOT_APPLICABLE, note="no model updating or recalibration after evaluation"),
        "12g": ChecklistAnswer(ANSWERED, anchor["methods"], "out-of-fold probabilities of models fitted without "
                                                            "the test patients"),
        "13": ChecklistAnswer(ANSWERED, anchor["methods"], "no resampling or class weighting was used"),
        "14": ChecklistAnswer(NOT_REPORTED, note="no fairness analysis: the run has no sociodemographic groups to "
                                                 "compare unless the manifest names them"),
        "15": ChecklistAnswer(ANSWERED, anchor["methods"], f"a probability of malignancy; the class at "
                                                           f"{threshold_rule_words(s)}"),
        "16": ChecklistAnswer(NOT_APPLICABLE, note="internal validation only: development and evaluation data are "
                                                   "the same cohort, split by patient"),
        "18e": ChecklistAnswer(NOT_REPORTED, note="data availability is the authors' to state"),
        "18f": ChecklistAnswer(ANSWERED, anchor["provenance"], "dlradiomics (open source) with the exact versions "
                                                               "and settings of this run"),
        "20a": ChecklistAnswer(ANSWERED, anchor["cohort"], "patients and images by class; every manifest row not "
                                                           "used, with its reason"),
        "20b": ChecklistAnswer(ANSWERED, anchor["cohort"], "Table 1 by class, with missing values"),
        "20c": ChecklistAnswer(NOT_APPLICABLE, note="no separate evaluation data set"),
        "21": ChecklistAnswer(ANSWERED, anchor["results"], "patients scored by each configuration; the folds in "
                                                           "folds.csv"),
        "22": ChecklistAnswer(ANSWERED, anchor["provenance"], "the fitted model as a bundle (model/), with "
                                                              "`dlradiomics predict` for new patients; the chosen "
                                                              "model's features and weights are listed"),
        "23a": ChecklistAnswer(PARTLY, anchor["results"], "every configuration with 95% CIs; subgroups not "
                                                          "analysed"),
        "23b": (ChecklistAnswer(NOT_REPORTED, note="performance by site is not estimated") if group else
                ChecklistAnswer(NOT_APPLICABLE, note="no clusters (sites) named in the manifest")),
        "24": ChecklistAnswer(NOT_APPLICABLE, note="no model updating"),
        "26": ChecklistAnswer(PARTLY, anchor["methods"], "units, discretisation and the canary's verdict are "
                                                         "stated; the discussion of limitations is the authors'"),
        "27a": ChecklistAnswer(PARTLY, anchor["provenance"], "the bundle flags inputs outside the training range "
                                                             "and images unlike the training images; clinical "
                                                             "handling is the authors'"),
    }
    return answers


def provenance_section(inputs: StudyReportInputs) -> ReportSection:
    """Run folder files and stage times."""
    times = pd.DataFrame({"stage": list(inputs.stage_seconds), "seconds": list(inputs.stage_seconds.values()),
                          "CPU seconds": [inputs.stage_cpu_seconds.get(stage) for stage in inputs.stage_seconds]})
    return ReportSection(HEADINGS["provenance"], paragraphs=[
        f"Run folder {inputs.run.root}: settings.yaml (every setting), versions.json, input_hashes.csv (SHA-256 of "
        "the manifest, every image and mask), radiomics_params.yaml, folds.csv (the outer folds), qa.csv, run.log, "
        "tables/*.csv and *.tex, figures/*.png, model/ (the bundle)."],
        tables=[ReportTable("stage_times", "Wall and CPU time per stage (CPU: the run's process and its workers)",
                            times)])


def forest_plot(inputs: StudyReportInputs) -> ReportFigure | None:
    """Every completed configuration's AUC with its 95% CI, the chosen one marked."""
    completed = inputs.grid.completed
    if completed.empty:
        return None
    rows = pd.DataFrame({"label": [configuration_label(row) for _, row in completed.iterrows()],
                         "auc": completed["auc"].to_numpy(), "low": completed["auc_ci_low"].to_numpy(),
                         "high": completed["auc_ci_high"].to_numpy()})
    path = inputs.run.figures_dir / "forest_auc.png"
    if "comparison_only" in completed:
        # CNN baselines and other comparison-only rows are shown but never chosen: say so on their label.
        only = completed["comparison_only"].astype("boolean").fillna(False).astype(bool).to_numpy()
        rows.loc[only, "label"] = rows.loc[only, "label"] + " (comparison only)"
    chosen = configuration_label(inputs.grid.best) if inputs.grid.has_choice else None
    save_figure(forest_figure(rows, highlight=chosen), path)
    return ReportFigure("AUC (95% CI) of every configuration, out-of-fold and patient level; the chosen model (by "
                        "inner-CV AUC, never by these test results) in red; dotted line: chance.", path)


def report_sections(inputs: StudyReportInputs, headline: Headline | None) -> list[ReportSection]:
    """The report's sections, in reading order."""
    sections = [cohort_section(inputs), methods_section(inputs), *results_sections(inputs)]
    if inputs.grid.has_choice:
        sections.append(chosen_model_section(inputs))
    elif not inputs.grid.completed.empty:
        sections.append(ReportSection(HEADINGS["chosen"], paragraphs=[
            f"No model was chosen: {inputs.grid.no_choice_reason()}."]))
    if inputs.paper_protocol is not None:
        # issue 10: the paper's leaky protocol beside the nested one (never the chosen model).
        sections.append(paper_protocol_section(inputs.paper_protocol.real, inputs.paper_protocol.permuted, inputs.grid,
                                               inputs.canary, n_boot=inputs.settings.report.bootstrap,
                                               seed=inputs.settings.cv.seed))
    sections += clinical_sections(inputs)
    sections.append(explanation_section(inputs.explanation))
    sections += [canary_section(inputs, headline), checklist_section(inputs), provenance_section(inputs)]
    return sections


def write_study_report(inputs: StudyReportInputs, headline: Headline | None = None) -> Path:
    """Draw the figures and write report.html with tables/*.csv and *.tex into the run folder.

    Args:
        inputs: the finished run's parts.
        headline: the run's headline (default: computed from `inputs`).

    Returns:
        The path of report.html.
    """
    headline = headline if headline is not None else study_headline(inputs)
    sections = report_sections(inputs, headline)
    return write_report(inputs.run.report_dir, title=f"dlradiomics report: {inputs.settings.name}",
                        opening=inputs.opening or "", sections=sections,
                        headline=headline.items() if headline is not None else
                        [("Chosen model", f"none: {inputs.grid.no_choice_reason()} (see Results)")],
                        problems=[] if headline is None or headline.canary is None or headline.canary.passed
                        else ["Leakage canary"],
                        headline_figure=forest_plot(inputs),
                        footer=f"dlradiomics; run folder {inputs.run.root}")

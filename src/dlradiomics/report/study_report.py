"""The study report: every section, table and figure a paper needs, from a finished run.

Sections follow the order a reader needs (TRIPOD+AI / METRICS spirit): what the cohort is, how
the data were checked, the methods with every setting, all results (not only the winner), the
chosen model at its frozen threshold, comparisons, explanations, the leakage canary, provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dlradiomics.evaluation import GridResult, delong_test, summarise_predictions
from dlradiomics.report.figures import (calibration_figure, confusion_figure, decision_curve_figure, roc_figure,
                                        save_figure)
from dlradiomics.report.html import ReportFigure, ReportSection, ReportTable, write_report

RESULT_COLUMNS = ["source", "modalities", "fusion", "classifier", "status", "n_patients", "inner_auc", "auc",
                  "auc_ci_low", "auc_ci_high", "accuracy", "sensitivity", "specificity", "balanced_accuracy",
                  "brier", "note"]
MAX_CURVES = 6
DELONG_MODELS = 5


@dataclass
class StudyReportInputs:
    """Everything a finished run hands to the report; the report imports nothing of the study.

    Args:
        settings: the study settings, read by attribute (`name`, `cv`, `threshold`, `radiomics`,
            `deep`, `selection`, `classifiers`, `feature_sources`, `fusion`, `report`).
        run: the run folder (`root`, `report_dir`, `figures_dir`).
        cohort: the cohort stage (`table`, `qa_summary`, and `cohort.problems`).
        features: the feature tables (`failures`).
        grid: the experiment grid's result.
        canary: the grid on permuted labels, or None when not run.
        final: the final model (`n_patients`, `threshold`, `bundle_path`), or None when no
            configuration completed.
        gallery: Grad-CAM overlays (`path`, `roi_id`, ...).
        opening: the first sentence (what the cohort is).
        versions: library versions of the run, by package (as in the run's versions.json).
        grid_cached: whether the grid came from the store.
        stage_seconds: wall time of each stage so far.
    """

    settings: Any
    run: Any
    cohort: Any
    features: Any
    grid: GridResult
    canary: GridResult | None
    final: Any
    gallery: pd.DataFrame
    opening: str | None
    versions: Mapping[str, str] = field(default_factory=dict)
    grid_cached: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)


def _label(row: pd.Series) -> str:
    return f"{row['source']} | {row['modalities']} | {row['fusion']} | {row['classifier']}"


def _with_labels(oof: pd.DataFrame) -> pd.DataFrame:
    labelled = oof.copy()
    labelled["configuration"] = [_label(row) for _, row in labelled.iterrows()]
    return labelled[labelled["repeat"] == labelled["repeat"].min()]


def cohort_sections(inputs: StudyReportInputs) -> ReportSection:
    """Cohort summary, modality combinations and QA findings."""
    table = inputs.cohort.table
    per_modality = (table.groupby(["modality", "label"])["patient_id"].nunique().unstack(fill_value=0)
                    .rename(columns={0: "benign patients", 1: "malignant patients"}).rename_axis(columns=None)
                    .reset_index())
    per_modality["images"] = table.groupby("modality").size().reindex(per_modality["modality"]).to_numpy()
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
    paragraphs = [
        f"{table['patient_id'].nunique()} patients, {len(table)} images, modalities "
        f"{', '.join(sorted(table['modality'].unique()))}. Patients lacking a modality stay in the study: "
        "late fusion (ensemble, stacking) uses the modalities each patient has; early fusion can only score "
        "patients who have every modality of the set, and says how many it could not score.",
        unused_rows_sentence(getattr(inputs.cohort, "unused", None), len(inputs.cohort.cohort.rejected))
        + f" QA checked {summary.n_rows} rows and flagged {summary.n_flagged}; {len(across)} duplicate or "
        "near-duplicate image pair(s) span different patients (a pair with different labels is a labelling problem; "
        "a pair across train and test leaks).",
    ]
    if inputs.opening:
        paragraphs.insert(0, inputs.opening)
    tables = [ReportTable("cohort_modalities", "Patients and images per modality", per_modality),
              ReportTable("cohort_combinations", "Patients per combination of modalities", combinations),
              ReportTable("qa_flags", "QA flags", flags)]
    if len(across):
        tables.append(ReportTable("qa_duplicates_across_patients", "Duplicate images across patients", across))
    if len(problems):
        tables.append(ReportTable("manifest_problems", "Manifest rows left out", problems))
    unused = getattr(inputs.cohort, "unused", None)
    if unused is not None and len(unused):
        tables.append(ReportTable("unused_rows", "Every manifest row this study did not use, and why", unused))
    failures = inputs.features.failures
    if len(failures):
        tables.append(ReportTable("feature_failures", "ROIs whose features could not be computed", failures))
    return ReportSection("Cohort and data quality", paragraphs=paragraphs, tables=tables)


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


def methods_section(inputs: StudyReportInputs) -> ReportSection:
    """A methods paragraph naming every setting."""
    s = inputs.settings
    folds = (f"the manifest's fold column '{s.cv.fold_column}'" if s.cv.fold_column else
             f"the split file {s.cv.split_file}" if s.cv.split_file else
             f"{s.cv.outer_folds}-fold stratified, patient-grouped CV repeated {s.cv.repeats} time(s) from seed "
             f"{s.cv.seed}")
    threshold = ("Youden's J" if s.threshold.rule == "youden" else f"the highest threshold reaching sensitivity "
                 f"{s.threshold.value}")
    versions = ", ".join(f"{name} {version}" for name, version in _versions(inputs).items())
    paragraphs = [
        "Features. Handcrafted features: PyRadiomics on the lesion mask, "
        f"{_dimension_words(s.radiomics.dimension)} (settings in "
        f"radiomics_params.yaml{'; file ' + str(s.radiomics.params) if s.radiomics.params else ', package defaults'}"
        f"{'; overrides ' + str(s.radiomics.overrides) if s.radiomics.overrides else ''}). Deep features: the "
        f"global-average-pooled embedding of a frozen ImageNet {s.deep.backbone} (weights '{s.deep.weights}') "
        "on a rectangular crop around the lesion, on the slice with the largest lesion area for volumes (3D "
        f"radiomics included). Both are cached per image content and setting.{_views_words(s.cohort.views)}",
        "Models. Radiomic blocks: Mann-Whitney U (p < "
        f"{s.selection.mann_whitney_p}), Spearman redundancy filter (|rho| > {s.selection.correlation_threshold})"
        f"{', LASSO' if s.selection.lasso else ''}; deep blocks: PCA to {s.deep.pca_components} components per "
        f"modality; DLR fusion: {_dlr_method(s)}. Classifiers: {', '.join(map(_classifier_label, s.classifiers))}. "
        "Feature sources: "
        f"{', '.join(s.feature_sources)}; fusion: {', '.join(s.fusion)} (ensemble weights = softmax of inner-CV "
        "accuracies; stacking meta-learner = logistic regression on inner out-of-fold probabilities). Images of one "
        "patient and modality are averaged to one patient probability.",
        f"Evaluation. Outer loop: {folds}; inner loop: {s.cv.inner_folds}-fold patient-grouped CV inside each "
        "training set for every fitted step (imputation, scaling, selection, PCA, ensemble weights, meta-learner) "
        f"and for the operating threshold ({threshold}), frozen before the test patients are scored. 95% CIs: "
        f"patient-level bootstrap ({s.report.bootstrap} resamples); DeLong's test between models on the same "
        "patients. The model reported as chosen has the highest mean inner-CV AUC (test folds never consulted); "
        "it is refitted on all patients for the bundle, with its threshold frozen from inner out-of-fold "
        "predictions. Leakage canary: the whole grid rerun on labels permuted across patients.",
        f"Software: {versions}.",
    ]
    return ReportSection("Methods", paragraphs=paragraphs)


def _classifier_label(entry: Any) -> str:
    # A study's own classifier (`{name, estimator, params}` in the study file) is named with its class.
    return entry if isinstance(entry, str) else f"{entry.name} ({entry.estimator})"


def _versions(inputs: StudyReportInputs) -> dict[str, str]:
    return {name: inputs.versions[name] for name in ("dlradiomics", "scikit-learn", "pyradiomics-bhklab", "torch",
                                                     "timm") if name in inputs.versions}


def results_sections(inputs: StudyReportInputs) -> list[ReportSection]:
    """The long results table, paper-style tables, ROC curves per comparison."""
    grid = inputs.grid
    results = grid.results.reindex(columns=RESULT_COLUMNS).sort_values(["status", "inner_auc"],
                                                                       ascending=[True, False])
    sections = []
    tables = [ReportTable("results_long", "Every configuration (out-of-fold, patient level; 95% CI)", results)]
    if not grid.completed.empty:
        tables.insert(0, ReportTable("summary_auc", "AUC (95% CI) by source, modalities and fusion (columns: "
                                     "classifiers)", grid.auc_table().rename_axis(columns=None).reset_index()))
        tables.insert(1, ReportTable("summary_best_classifier", "Best classifier per setting (by inner-CV AUC)",
                                     grid.best_per_setting()))
    sections.append(ReportSection("Results", paragraphs=[
        "Every configuration is reported, not only the best; each row's metrics come from out-of-fold predictions "
        "at thresholds frozen on training folds." + (" (Grid results were read back from the feature store: "
        "inputs unchanged since an earlier run.)" if inputs.grid_cached else "")], tables=tables))
    if grid.completed.empty:
        return sections
    figures = []
    oof = _with_labels(grid.oof)
    best_per_setting = grid.best_per_setting()
    for source, rows in best_per_setting.groupby("source", sort=False):
        chosen = rows.sort_values("inner_auc", ascending=False).head(MAX_CURVES)
        labels = [_label(row) for _, row in chosen.iterrows()]
        path = inputs.run.figures_dir / f"roc_{source}.png"
        save_figure(roc_figure(oof, labels, f"ROC: {source} features (best classifier per setting)"), path)
        figures.append(ReportFigure(f"ROC curves, {source} features: each modality set and fusion with its "
                                    "best classifier by inner CV.", path))
    fusion_best = (best_per_setting.sort_values("inner_auc", ascending=False).groupby("fusion", sort=False).head(1))
    path = inputs.run.figures_dir / "roc_fusions.png"
    save_figure(roc_figure(oof, [_label(row) for _, row in fusion_best.iterrows()], "ROC: best of each fusion"), path)
    figures.append(ReportFigure("ROC curves: the best configuration of each fusion strategy.", path))
    sections.append(ReportSection("ROC curves", figures=figures))
    return sections


def chosen_model_section(inputs: StudyReportInputs) -> ReportSection:
    """The chosen model: metrics, confusion matrix at its frozen thresholds, DCA, calibration, DeLong."""
    grid, final = inputs.grid, inputs.final
    best = grid.best
    best_label = _label(best)
    oof = _with_labels(grid.oof)
    best_rows = oof[oof["configuration"] == best_label]
    figures_dir = inputs.run.figures_dir
    predicted = (best_rows["prob"] >= best_rows["threshold"]).astype(int)
    save_figure(confusion_figure(best_rows["y_true"], predicted, f"{best_label}\n(out-of-fold, frozen thresholds)"),
                figures_dir / "confusion_matrix.png")
    top = grid.best_per_setting().sort_values("inner_auc", ascending=False)
    compared = [best_label] + [label for label in (_label(row) for _, row in top.iterrows()) if label != best_label]
    compared = compared[:DELONG_MODELS]
    save_figure(decision_curve_figure(oof, compared[:3]), figures_dir / "decision_curve.png")
    save_figure(calibration_figure(oof, compared[:3]), figures_dir / "calibration.png")

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
                            "p (DeLong)": comparison.p_value})
    metrics = best.reindex([c for c in best.index if c.split("_ci_")[0] in
                            ("auc", "accuracy", "sensitivity", "specificity", "balanced_accuracy", "ppv", "npv",
                             "f1", "brier")])
    metric_table = pd.DataFrame({"metric": [name for name in metrics.index if "_ci_" not in name]})
    metric_table["estimate"] = [best[name] for name in metric_table["metric"]]
    metric_table["95% CI low"] = [best.get(f"{name}_ci_low") for name in metric_table["metric"]]
    metric_table["95% CI high"] = [best.get(f"{name}_ci_high") for name in metric_table["metric"]]
    paragraphs = [f"Chosen by the highest mean inner-CV AUC ({best['inner_auc']:.3f}) on training folds: "
                  f"{best_label}. Its out-of-fold AUC is {best['auc']:.3f} (95% CI {best['auc_ci_low']:.3f}-"
                  f"{best['auc_ci_high']:.3f}) on {int(best['n_patients'])} patients."]
    try:
        nested = summarise_predictions(grid.nested_selection_predictions(), n_boot=inputs.settings.report.bootstrap,
                                       seed=inputs.settings.cv.seed)
        paragraphs.append("Choosing the configuration inside each outer fold by inner AUC (the whole procedure, "
                          f"selection included) gives AUC {nested['auc']:.3f} (95% CI {nested['auc_ci_low']:.3f}-"
                          f"{nested['auc_ci_high']:.3f}): the honest estimate for 'run the grid, keep the best'.")
    except ValueError as error:
        paragraphs.append(f"The nested-selection estimate could not be computed: {error}.")
    if final is not None:
        paragraphs.append(f"Refitted on all {final.n_patients} patients, with threshold {final.threshold:.3f} frozen "
                          f"from inner out-of-fold predictions; saved as the bundle {final.bundle_path.name}/ "
                          "(use `dlradiomics predict`).")
    figures = [ReportFigure("Confusion matrix of the chosen model: out-of-fold predictions at each fold's frozen "
                            "threshold.", figures_dir / "confusion_matrix.png"),
               ReportFigure("Decision-curve analysis (net benefit against treat-all and treat-none).",
                            figures_dir / "decision_curve.png"),
               ReportFigure("Calibration of out-of-fold probabilities (quantile bins).", figures_dir / "calibration.png")]
    tables = [ReportTable("chosen_model_metrics", "Chosen model: out-of-fold metrics with 95% CI", metric_table)]
    if delong_rows:
        tables.append(ReportTable("delong", "DeLong comparisons: chosen model against the next best settings",
                                  pd.DataFrame(delong_rows)))
    return ReportSection("Chosen model", paragraphs=paragraphs, tables=tables, figures=figures)


def gallery_section(inputs: StudyReportInputs) -> ReportSection:
    """Grad-CAM overlays with the share of heatmap mass inside the lesion."""
    gallery = inputs.gallery
    if gallery is None or gallery.empty or "path" not in gallery:
        return ReportSection("Grad-CAM", paragraphs=["No deep features in this study, so no Grad-CAM."])
    shown = gallery[gallery["path"].notna() & (gallery["path"] != "")]
    figures = [ReportFigure(f"{row.roi_id}: p(malignant) {row.probability:.2f}; heatmap mass in lesion "
                            f"{row.lesion_mass_fraction:.0%} (lesion area {row.lesion_area_fraction:.0%})",
                            row.path) for row in shown.itertuples()]
    paragraphs = [f"Grad-CAM on the last convolutional block of {inputs.settings.deep.backbone}, through a linear head "
                  "trained on each modality's embeddings (the paper's transfer-learning head). White outline: the "
                  "lesion mask. A heatmap that looks at the lesion has a mass share well above the lesion's area "
                  "share."]
    return ReportSection("Grad-CAM gallery", paragraphs=paragraphs, figures=figures, small_figures=True,
                         tables=[ReportTable("gradcam", "Grad-CAM overlays", gallery.drop(columns=["path"]))])


def canary_section(inputs: StudyReportInputs) -> ReportSection:
    """The permuted-label canary's AUCs."""
    canary = inputs.canary
    if canary is None or canary.completed.empty:
        return ReportSection("Leakage canary", paragraphs=["The permuted-label canary was not run."])
    completed = canary.completed
    aucs = completed["auc"]
    within = ((completed["auc_ci_low"] <= 0.5) & (completed["auc_ci_high"] >= 0.5)).mean()
    paragraphs = [f"The whole grid rerun on labels permuted across patients: AUC mean {aucs.mean():.3f}, range "
                  f"{aucs.min():.3f}-{aucs.max():.3f} over {len(completed)} configurations; {within:.0%} of their 95% "
                  "CIs contain 0.5. With nothing to learn, an honest pipeline scores near 0.5; a pipeline that "
                  "leaks test information into training scores well above it."]
    columns = ["source", "modalities", "fusion", "classifier", "auc", "auc_ci_low", "auc_ci_high"]
    return ReportSection("Leakage canary", paragraphs=paragraphs,
                         tables=[ReportTable("canary", "Permuted-label AUCs", completed[columns])])


def provenance_section(inputs: StudyReportInputs) -> ReportSection:
    """Run folder files and stage times."""
    times = pd.DataFrame(list(inputs.stage_seconds.items()), columns=["stage", "seconds"])
    return ReportSection("Provenance", paragraphs=[
        f"Run folder {inputs.run.root}: settings.yaml (every setting), versions.json, input_hashes.csv (SHA-256 of "
        "the manifest, every image and mask), radiomics_params.yaml, folds.csv (the outer folds), qa.csv, run.log, "
        "tables/*.csv, figures/*.png, model/ (the bundle)."], tables=[ReportTable("stage_times", "Wall time per stage",
                                                                               times)])


def write_study_report(inputs: StudyReportInputs):
    """Draw the figures and write report.html with tables/*.csv into the run folder.

    Args:
        inputs: the finished run's parts.

    Returns:
        The path of report.html.
    """
    sections = [cohort_sections(inputs), methods_section(inputs), *results_sections(inputs)]
    if not inputs.grid.candidates.empty:
        sections.append(chosen_model_section(inputs))
    sections += [gallery_section(inputs), canary_section(inputs), provenance_section(inputs)]
    opening = inputs.opening or (f"Study '{inputs.settings.name}': {inputs.cohort.table['patient_id'].nunique()} "
                                 "patients; every fitted step was fitted inside training folds only.")
    return write_report(inputs.run.report_dir, title=f"dlradiomics report: {inputs.settings.name}", opening=opening,
                        sections=sections, footer=f"dlradiomics; run folder {inputs.run.root}")


def _dlr_method(s: Any) -> str:
    """How DLR fusion compressed the features, in words (component counts are ceilings per training fold)."""
    if s.dlr.composition == "whole_table":
        return f"one PCA of all radiomic and deep features to at most {s.dlr.whole_table_components} components"
    return (f"deep features to {s.deep.pca_components} components per modality, then a deep part of at most "
            f"{s.dlr.deep_components} and a radiomic part of at most {s.dlr.radiomic_components} components "
            "(the paper's composition; smaller training folds keep fewer)")

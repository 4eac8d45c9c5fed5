"""Report sections for the clinic: the reference operating point beside the models, and site-held-out results.

Self-contained: each function takes what it shows (evaluation results, plain tables) and returns
one `ReportSection`, so the report can place it wherever its structure wants.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dlradiomics.evaluation import CONFIG_COLUMNS, ClinicalComparison, SiteValidation, roc_table
from dlradiomics.evaluation.reference import unit_interval
from dlradiomics.report.figures import save_figure
from dlradiomics.report.html import ReportFigure, ReportSection, ReportTable


def _p(value: float) -> str:
    """A p-value as a reader expects it: two significant digits, '< 0.001' below that."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return "< 0.001" if value < 0.001 else f"{value:.2g}"


def _interval(row: pd.Series, metric: str) -> str:
    if pd.isna(row.get(metric)):
        return "not defined"
    if pd.isna(row.get(f"{metric}_ci_low")):
        return f"{row[metric]:.3f}"
    return f"{row[metric]:.3f} ({row[f'{metric}_ci_low']:.3f}-{row[f'{metric}_ci_high']:.3f})"


def reference_section(comparison: ClinicalComparison, *, role_predictions: Mapping[str, pd.DataFrame],
                      reference_scores: pd.Series, figures_dir: Path, operating_point: str,
                      selection_rule: str) -> ReportSection:
    """The reference alone, the model alone and the two together, at the study's operating point.

    Args:
        comparison: `dlradiomics.evaluation.compare_grid_with_reference`'s result.
        role_predictions: out-of-fold predictions (one repeat) of each model role, for the ROC figure.
        reference_scores: the reference score per patient (index ``patient_id``).
        figures_dir: where the figure is written.
        operating_point: how the models' thresholds were frozen, in words.
        selection_rule: how each role's configuration was chosen, in words.

    Returns:
        The section: a sentence per model role, the table, the ROC figure with operating points.
    """
    table = comparison.table
    reference_row = table.iloc[0]
    shown = pd.DataFrame({
        "role": table["role"], "configuration": table["configuration"], "patients": table["patients"].astype(int),
        "AUC (95% CI)": [_interval(row, "auc") for _, row in table.iterrows()],
        "sensitivity (95% CI)": [_interval(row, "sensitivity") for _, row in table.iterrows()],
        "specificity (95% CI)": [_interval(row, "specificity") for _, row in table.iterrows()],
        "benign: model right, reference wrong / the reverse": [
            "" if pd.isna(row["specificity_model_only"]) else
            f"{int(row['specificity_model_only'])} / {int(row['specificity_reference_only'])}"
            for _, row in table.iterrows()],
        "p specificity (McNemar mid-p; exact)": [
            "" if pd.isna(row["p_specificity_mcnemar_mid"]) else
            f"{_p(row['p_specificity_mcnemar_mid'])}; {_p(row['p_specificity_mcnemar_exact'])}"
            for _, row in table.iterrows()],
        "p sensitivity (McNemar mid-p)": [_p(row["p_sensitivity_mcnemar_mid"]) for _, row in table.iterrows()],
        "p AUC (DeLong)": [_p(row["p_auc_delong"]) for _, row in table.iterrows()],
    })
    paragraphs = [
        f"The reference, {comparison.reference} (a patient is called malignant at a score of "
        f"{comparison.positive_at:g} or more), beside the models on the same patients: sensitivity "
        f"{reference_row['sensitivity']:.3f}, specificity {reference_row['specificity']:.3f}, and AUC "
        f"{reference_row['auc']:.3f} when its score is read as a score. The models are read at {operating_point}, "
        f"frozen on training folds before any test patient was scored; each role's configuration is the best of "
        f"its kind by the {selection_rule}.",
        "McNemar's tests compare the paired calls on the same patients: on the benign patients (specificity: "
        "who sends fewer benign lesions to biopsy) and on the malignant ones (sensitivity); mid-p and exact "
        "p-values. DeLong's test compares the AUCs, the reference read as a score.",
    ]
    for _, row in table.iloc[1:].iterrows():
        change = row["specificity"] - reference_row["specificity"]
        paragraphs.append(
            f"{row['role'].capitalize()} ({row['configuration']}): sensitivity {row['sensitivity']:.3f} against "
            f"{reference_row['sensitivity']:.3f}, specificity {row['specificity']:.3f} against "
            f"{reference_row['specificity']:.3f} ({'+' if change >= 0 else ''}{change:.3f}; McNemar mid-p "
            f"{_p(row['p_specificity_mcnemar_mid'])}), AUC {row['auc']:.3f} against {reference_row['auc']:.3f} "
            f"(DeLong p {_p(row['p_auc_delong'])}).")
        if row["sensitivity"] < reference_row["sensitivity"]:
            paragraphs.append(f"Note: {row['role']} reached a lower sensitivity than the reference, so its "
                              "specificity is not compared at quite the same sensitivity.")
    path = figures_dir / "reference_roc.png"
    save_figure(_reference_figure(comparison, role_predictions, reference_scores), path)
    return ReportSection(
        f"The clinical operating point: {comparison.reference}, the model, and both", paragraphs=paragraphs,
        tables=[ReportTable("reference_comparison", f"{comparison.reference} alone, the model alone and the two "
                            "together, on the same patients", shown)],
        figures=[ReportFigure(f"ROC curves (out-of-fold) with the operating points: the models at their frozen "
                              f"thresholds (dots), {comparison.reference} at its cut-off (star) and as a score "
                              "(dashed).", path)])


def _reference_figure(comparison: ClinicalComparison, role_predictions: Mapping[str, pd.DataFrame],
                      reference_scores: pd.Series):
    figure, axis = plt.subplots(figsize=(6.0, 5.0))
    for role, predictions in role_predictions.items():
        curve = roc_table(predictions["y_true"].to_numpy(), predictions["prob"].to_numpy())
        line, = axis.plot(curve["fpr"], curve["tpr"], label=role)
        called = predictions["prob"].to_numpy() >= predictions["threshold"].to_numpy()
        malignant = predictions["y_true"].to_numpy() == 1
        axis.plot([called[~malignant].mean()], [called[malignant].mean()], "o", color=line.get_color())
    first = next(iter(role_predictions.values()))
    scores = pd.to_numeric(reference_scores.rename(index=str), errors="coerce").reindex(
        first["patient_id"].astype(str)).to_numpy(dtype=float)
    have = ~np.isnan(scores)
    y_true = first["y_true"].to_numpy()[have]
    unit_scores, cutoff = unit_interval(scores[have], comparison.positive_at)
    curve = roc_table(y_true, unit_scores)
    axis.plot(curve["fpr"], curve["tpr"], linestyle="--", color="black", label=f"{comparison.reference} as a score")
    called = unit_scores >= cutoff
    axis.plot([called[y_true == 0].mean()], [called[y_true == 1].mean()], "*", markersize=14, color="black",
              label=f"{comparison.reference} >= {comparison.positive_at:g}")
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axis.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.02))
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def site_validation_section(sites: SiteValidation, *, main_results: pd.DataFrame, main_folds: str) -> ReportSection:
    """Leave-one-site-out results beside the main folds', pooled and site by site.

    Args:
        sites: the site-held-out cross-validation.
        main_results: the grid's results (configuration columns, ``auc`` with CI,
            ``sensitivity``, ``specificity``), where the same configurations' main-fold rows are.
        main_folds: the main folds, in words.

    Returns:
        The section.
    """
    labels = main_results[list(CONFIG_COLUMNS)].astype(str).agg(" | ".join, axis=1)
    rows = []
    for _, summary in sites.summary.iterrows():
        main = main_results[labels == summary["configuration"]]
        main_row = main.iloc[0] if len(main) else None
        rows.append({"role": summary["role"], "configuration": summary["configuration"],
                     "patients": int(summary["n_patients"]),
                     "AUC, leave one site out": _interval(summary, "auc"),
                     "AUC, main folds": _interval(main_row, "auc") if main_row is not None else "",
                     "sensitivity, leave one site out": _interval(summary, "sensitivity"),
                     "specificity, leave one site out": _interval(summary, "specificity"),
                     "sensitivity / specificity, main folds": (
                         f"{main_row['sensitivity']:.3f} / {main_row['specificity']:.3f}" if main_row is not None
                         else "")})
    per_site = sites.per_site
    shown = pd.DataFrame({
        "role": per_site["role"], "held-out site": per_site["group"],
        "patients (benign/malignant)": [f"{int(r.patients)} ({int(r.benign)}/{int(r.malignant)})"
                                        for r in per_site.itertuples()],
        "AUC (95% CI)": [_interval(row, "auc") for _, row in per_site.iterrows()],
        "sensitivity (95% CI)": [_interval(row, "sensitivity") for _, row in per_site.iterrows()],
        "specificity (95% CI)": [_interval(row, "specificity") for _, row in per_site.iterrows()],
        "note": per_site["note"]})
    groups = sites.fold_table.groupby("group")["patient_id"].nunique()
    small = [name for name, note in zip(per_site["group"], per_site["note"]) if note]
    paragraphs = [
        f"Leave-one-site-out cross-validation on the column '{sites.column}' ({len(groups)} sites: "
        + ", ".join(f"{name} ({count} patients)" for name, count in groups.items())
        + f"): each site is held out once while every fitted step and the threshold are learnt on the other "
        f"sites, so each number is that of a model meeting a scanner it never saw. The configurations are the "
        f"ones chosen on the main folds ({main_folds}); this validation re-evaluates them and never changes the "
        "choice.",
    ]
    if small:
        paragraphs.append("Some sites are small or hold one class only (" + ", ".join(dict.fromkeys(small))
                          + "): their own figures carry wide intervals or none; the pooled figures use every site.")
    return ReportSection(f"Leave-one-site-out validation ({sites.column})", paragraphs=paragraphs, tables=[
        ReportTable("site_validation", "Pooled over the held-out sites, beside the main folds", pd.DataFrame(rows)),
        ReportTable("site_validation_per_site", "Each held-out site", shown)])

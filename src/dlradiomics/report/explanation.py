"""Explaining the chosen model: what it reads, how much each feature weighs, how stable the choice
of features is across outer folds, and which patients it gets right and wrong.

The study hands a `ModelExplanation` (computed from the fitted models); this module turns it into
the report's tables and gallery. Nothing here refits anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlradiomics.report.html import ReportFigure, ReportSection, ReportTable

COEFFICIENT_PER_SD = "coefficient per SD"  # the weight kinds of dlradiomics.models.terms
COEFFICIENT = "coefficient"
IMPURITY_IMPORTANCE = "impurity importance"
OUTCOMES = {"TP": "true positive", "FN": "false negative", "TN": "true negative", "FP": "false positive"}
EXPLANATION_HEADING = "Explaining the chosen model"


@dataclass
class ModelExplanation:
    """What the study measured about the chosen model, for the report.

    Args:
        configuration: the chosen configuration's label.
        final_terms: what the model refitted on all patients reads (`dlradiomics.models.TERM_COLUMNS`).
        fold_terms: what its model read in each outer fold (the same columns plus ``repeat, fold``).
        n_outer_fits: outer-fold fits of the configuration (folds x repeats).
        n_candidates: feature columns the model could choose from.
        permutation: permutation importance on held-out outer folds, one row per column and fold
            (``block, feature, column, fold, importance``: mean decrease in AUC), or empty.
        permutation_note: how the permutation importance was measured, or why it was not.
        cases: the case gallery: one row per case (``outcome`` as in `OUTCOMES`, ``patient_id``,
            ``roi_id``, ``modality``, ``prob``, ``threshold``, ``path`` of its PNG, ``caption``).
        cases_note: how the cases were picked, and what their images show (Grad-CAM or not, and why).
    """

    configuration: str
    final_terms: pd.DataFrame
    fold_terms: pd.DataFrame
    n_outer_fits: int
    n_candidates: int
    permutation: pd.DataFrame = field(default_factory=pd.DataFrame)
    permutation_note: str = ""
    cases: pd.DataFrame = field(default_factory=pd.DataFrame)
    cases_note: str = ""


def selection_frequency(fold_terms: pd.DataFrame, n_outer_fits: int) -> pd.DataFrame:
    """Per column: in how many outer-fold fits it was selected, and its mean weight there.

    Args:
        fold_terms: terms of each outer fold (`TERM_COLUMNS` + ``repeat, fold``).
        n_outer_fits: the number of outer-fold fits.

    Returns:
        ``column, block, feature, selected_in, selected_fraction, mean_fold_weight``.
    """
    columns = ["column", "block", "feature", "selected_in", "selected_fraction", "mean_fold_weight"]
    if fold_terms is None or fold_terms.empty:
        return pd.DataFrame(columns=columns)
    grouped = fold_terms.groupby("column", sort=False)
    table = pd.DataFrame({
        "block": grouped["block"].first(),
        "feature": grouped["feature"].first(),
        "selected_in": grouped.apply(lambda rows: rows[["repeat", "fold"]].drop_duplicates().shape[0],
                                     include_groups=False).astype(int),
        "mean_fold_weight": grouped["weight"].mean(),
    }).reset_index()
    table["selected_fraction"] = table["selected_in"] / max(n_outer_fits, 1)
    return table[columns]


def feature_table(explanation: ModelExplanation) -> pd.DataFrame:
    """The chosen model's named features: weight in the final model, odds ratio per SD, selection frequency.

    Features the final model reads come first (largest absolute weight first), then those selected
    only in some outer folds (most often first). PCA components (derived columns) are left out.
    """
    final = _named(explanation.final_terms).set_index("column")
    fold_terms = _named(explanation.fold_terms)
    frequency = selection_frequency(fold_terms, explanation.n_outer_fits).set_index("column")
    kinds = pd.concat([final["weight_kind"], fold_terms.get("weight_kind", pd.Series(dtype=object))])
    kind = kinds.iloc[0] if len(kinds) else "none"
    label = {COEFFICIENT_PER_SD: "coefficient per SD", COEFFICIENT: "coefficient",
             IMPURITY_IMPORTANCE: "impurity importance"}.get(kind)
    by_weight = final.index[np.argsort(-final["weight"].abs().fillna(0).to_numpy(), kind="stable")]
    by_frequency = frequency.sort_values("selected_in", ascending=False, kind="stable").index
    rows = []
    for column in [*by_weight, *(column for column in by_frequency if column not in final.index)]:
        named = final.loc[column] if column in final.index else frequency.loc[column]
        selected = int(frequency.loc[column, "selected_in"]) if column in frequency.index else 0
        weight = float(final.loc[column, "weight"]) if column in final.index else math.nan
        row = {"block": named["block"], "feature": named["feature"],
               "in final model": "yes" if column in final.index else "no"}
        if label:
            row[f"{label} (final model)"] = weight
        if kind == COEFFICIENT_PER_SD:
            row["odds ratio per SD (final model)"] = math.exp(weight) if math.isfinite(weight) else math.nan
        row["selected in outer folds"] = f"{selected}/{explanation.n_outer_fits}"
        if label:
            row[f"mean {label} across outer folds"] = (float(frequency.loc[column, "mean_fold_weight"])
                                                       if column in frequency.index else math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def _named(terms: pd.DataFrame) -> pd.DataFrame:
    """Terms that are features a reader can name (not PCA components)."""
    if terms is None or terms.empty:
        return pd.DataFrame(columns=["column", "block", "feature", "weight", "weight_kind", "derived", "repeat", "fold"])
    return terms[~terms["derived"].astype(bool)]


def permutation_table(permutation: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD of each column's permutation importance over the held-out folds, largest first."""
    if permutation is None or permutation.empty:
        return pd.DataFrame(columns=["block", "feature", "mean AUC drop", "SD across folds", "folds"])
    grouped = permutation.groupby("column", sort=False)
    table = pd.DataFrame({"block": grouped["block"].first(), "feature": grouped["feature"].first(),
                          "mean AUC drop": grouped["importance"].mean(),
                          "SD across folds": grouped["importance"].std(ddof=1),
                          "folds": grouped["fold"].nunique()})
    return table.sort_values("mean AUC drop", ascending=False).reset_index(drop=True)


def explanation_section(explanation: ModelExplanation | None) -> ReportSection:
    """The report section explaining the chosen model."""
    if explanation is None:
        return ReportSection(EXPLANATION_HEADING, paragraphs=["No configuration completed, so there is no model "
                                                              "to explain."])
    final = explanation.final_terms
    named = final[~final["derived"].astype(bool)] if len(final) else final
    derived = final[final["derived"].astype(bool)] if len(final) else final
    paragraphs = [_reads_sentence(explanation, named, derived)]
    tables = []
    features = feature_table(explanation)
    if len(features):
        tables.append(ReportTable("chosen_model_features", "Selected features of the chosen model, their weights and "
                                  f"how often each was selected across the {explanation.n_outer_fits} outer-fold fits",
                                  features))
        paragraphs.append(_weight_sentence(named["weight_kind"].iloc[0] if len(named) else "none"))
    if explanation.permutation_note:
        paragraphs.append(explanation.permutation_note)
    importance = permutation_table(explanation.permutation)
    if len(importance):
        tables.append(ReportTable("chosen_model_permutation_importance", "Permutation importance on held-out outer "
                                  "folds (drop in AUC when the feature's values are shuffled)", importance))
    figures = []
    cases = explanation.cases
    if cases is not None and len(cases):
        paragraphs.append(explanation.cases_note)
        figures = [ReportFigure(row.caption, Path(row.path)) for row in cases.itertuples()
                   if isinstance(row.path, str) and row.path]
        tables.append(ReportTable("case_gallery", "Cases shown (out-of-fold predictions of the chosen model)",
                                  cases.drop(columns=["path", "caption"], errors="ignore")))
    elif explanation.cases_note:
        paragraphs.append(explanation.cases_note)
    return ReportSection(EXPLANATION_HEADING, paragraphs=paragraphs, tables=tables, figures=figures,
                         small_figures=True)


def _reads_sentence(explanation: ModelExplanation, named: pd.DataFrame, derived: pd.DataFrame) -> str:
    parts = []
    if len(named):
        parts.append(f"{len(named)} named feature(s) of {explanation.n_candidates} candidates")
    if len(derived):
        blocks = ", ".join(sorted(derived["block"].astype(str).unique()))
        parts.append(f"{len(derived)} principal component(s) of {blocks} (mixtures of many features with no "
                     "names of their own, so no per-feature weights are shown for them)")
    reads = " and ".join(parts) if parts else "no columns this report can name"
    sentence = f"The chosen model ({explanation.configuration}), refitted on all patients, reads {reads}."
    if len(named):
        # Only where the features table is shown: selection frequency is a column of it.
        sentence += (" Selection frequency counts the outer-fold fits (each on that fold's training patients only) "
                     "whose selection kept the feature: a feature kept in every fold is a stable choice, one kept in "
                     "few is not.")
    return sentence


def _weight_sentence(kind: str) -> str:
    if kind == COEFFICIENT_PER_SD:
        return ("Weights are logistic-regression coefficients on standardised features: the change in the log "
                "odds of malignancy when the feature rises by one standard deviation of the training patients, "
                "the others held fixed; the odds ratio per SD is its exponential (above 1: higher values point "
                "to malignant).")
    if kind == IMPURITY_IMPORTANCE:
        return ("Weights are the tree ensemble's impurity importances (sum 1; computed on training data, so "
                "they favour features with many distinct values): the permutation importance on held-out folds "
                "is the fairer measure.")
    if kind == COEFFICIENT:
        return "Weights are the linear model's coefficients on unscaled features (units of each feature)."
    return "This classifier has no per-feature weights; the permutation importance measures each feature's part."


def case_caption(outcome: str, patient_id: str, modality: str, prob: float, threshold: float,
                 gradcam: tuple[float, float] | None = None) -> str:
    """``TP (true positive), patient P7, US: p(malignant) 0.93 >= threshold 0.41``, with the Grad-CAM share."""
    sign = ">=" if prob >= threshold else "<"
    text = (f"{outcome} ({OUTCOMES[outcome]}), patient {patient_id}, {modality}: p(malignant) {prob:.2f} {sign} "
            f"threshold {threshold:.2f}")
    if gradcam is not None:
        mass, area = gradcam
        share = "n/a (flat heatmap)" if mass is None or not math.isfinite(mass) else f"{mass:.0%}"
        area_text = "n/a" if area is None or not math.isfinite(area) else f"{area:.0%}"
        text += f"; Grad-CAM mass in lesion {share} (lesion area {area_text})"
    return text

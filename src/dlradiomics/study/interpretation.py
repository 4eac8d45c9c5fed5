"""The chosen model explained: what it reads and how stably, which features matter on unseen patients,
and a gallery of its right and wrong calls on distinct patients.

Everything is measured on the chosen configuration only, after the grid: its features per outer
fold come from the grid's record (`GridResult.terms`), its final weights from the refitted model,
the permutation importance from refitting it on each outer fold's training rows (tree and kernel
models, whose weights are not per-feature effects), and the gallery from its out-of-fold predictions.
Grad-CAM is drawn only when the chosen model reads deep features, and its caption says what it
explains.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from dlradiomics.cohort import load_row_roi
from dlradiomics.evaluation import GridResult
from dlradiomics.evaluation.importance import held_out_permutation_importance
from dlradiomics.models import ModelConfiguration
from dlradiomics.models.terms import COEFFICIENT, COEFFICIENT_PER_SD
from dlradiomics.progress import Progress
from dlradiomics.report.explanation import ModelExplanation, case_caption
from dlradiomics.report.figures import roi_figure, save_figure
from dlradiomics.report.headline import configuration_label
from dlradiomics.study.explain import heads_from_tensors
from dlradiomics.study.features import FeatureTables, model_table_for

logger = logging.getLogger(__name__)

PERMUTATION_REPEATS = 5
# Order of the gallery, and how each outcome's most telling cases are ranked.
OUTCOME_ORDER = ("TP", "FN", "TN", "FP")


def explain_chosen_model(grid: GridResult, features: FeatureTables, cohort_table: pd.DataFrame, *,
                         configuration: ModelConfiguration, estimator: BaseEstimator, final_terms: pd.DataFrame,
                         cases_per_outcome: int, out_dir: Path, gradcam: dict | None = None, seed: int = 0,
                         progress: bool = False) -> ModelExplanation:
    """Measure what the report shows about the chosen model.

    Args:
        grid: the grid's result (its `best` is the chosen model).
        features: the feature tables.
        cohort_table: the study's cohort rows (images and masks of the gallery).
        configuration: the chosen configuration (the grid's `best`).
        estimator: its unfitted estimator, built as the grid builds it (for permutation importance).
        final_terms: what the refitted final model reads (`dlradiomics.models.model_terms`).
        cases_per_outcome: gallery cases per outcome (true/false positive/negative).
        out_dir: folder for the gallery's PNG files.
        gradcam: for a model reading deep features, `{"tensors", "backbone", "weights"}` of the
            Grad-CAM heads; None otherwise.
        seed: seed of the permutations.
        progress: show counts and time left.
    """
    best = grid.best
    X, y, groups = model_table_for(features.tables, list(configuration.modalities), list(configuration.kinds))
    fold_terms = grid.terms_of(best)
    n_outer_fits = int(grid.fold_table.groupby("repeat")["fold"].nunique().sum()) if len(grid.fold_table) else 0
    permutation, permutation_note = _permutation_importance(estimator, X, y, groups, grid, final_terms, seed,
                                                            progress)
    cases, cases_note = case_gallery(grid.predictions_of(best), cohort_table, configuration, cases_per_outcome,
                                     out_dir, gradcam=gradcam, progress=progress)
    return ModelExplanation(configuration=configuration_label(best), final_terms=final_terms, fold_terms=fold_terms,
                            n_outer_fits=n_outer_fits, n_candidates=int(X.shape[1]), permutation=permutation,
                            permutation_note=permutation_note, cases=cases, cases_note=cases_note)


def _permutation_importance(estimator, X, y, groups, grid: GridResult, final_terms: pd.DataFrame, seed: int,
                            progress: bool) -> tuple[pd.DataFrame, str]:
    named = final_terms[~final_terms["derived"].astype(bool)] if len(final_terms) else final_terms
    if named.empty:
        return pd.DataFrame(), ""
    if set(named["weight_kind"]) <= {COEFFICIENT_PER_SD, COEFFICIENT}:
        return pd.DataFrame(), ("Permutation importance is not measured for a linear model: its coefficients per "
                                "SD already give each feature's effect.")
    importance = held_out_permutation_importance(estimator, X, y, groups, grid.fold_table,
                                                 n_repeats=PERMUTATION_REPEATS, seed=seed, progress=progress)
    note = (f"Permutation importance: the model refitted on each outer fold's training patients (the same fit as "
            f"the grid's), each selected feature shuffled {PERMUTATION_REPEATS} times among that fold's held-out "
            "images, and the drop in AUC averaged (scikit-learn's permutation_importance; first repeat of the "
            "folds). Near 0: the model does not rely on the feature for unseen patients.")
    return importance, note


def pick_cases(predictions: pd.DataFrame, per_outcome: int) -> pd.DataFrame:
    """The gallery's patients: for each outcome the most telling out-of-fold calls, each patient once.

    True positives and false positives with the highest probabilities, true negatives and false
    negatives with the lowest: the model's most confident calls, right and wrong.

    Args:
        predictions: out-of-fold predictions of one configuration (``patient_id, repeat, y_true,
            prob, threshold``).
        per_outcome: cases per outcome.

    Returns:
        ``outcome, patient_id, y_true, prob, threshold`` in `OUTCOME_ORDER`.
    """
    rows = predictions[predictions["repeat"] == predictions["repeat"].min()].copy()
    positive = rows["prob"] >= rows["threshold"]
    malignant = rows["y_true"] == 1
    rows["outcome"] = np.select([positive & malignant, ~positive & malignant, ~positive & ~malignant],
                                ["TP", "FN", "TN"], "FP")
    picked = []
    for outcome in OUTCOME_ORDER:
        group = rows[rows["outcome"] == outcome]
        highest_first = outcome in ("TP", "FP")
        picked.append(group.sort_values(["prob", "patient_id"], ascending=[not highest_first, True])
                      .drop_duplicates("patient_id").head(per_outcome))
    chosen = pd.concat(picked, ignore_index=True)
    return chosen[["outcome", "patient_id", "y_true", "prob", "threshold"]]


def case_gallery(predictions: pd.DataFrame, cohort_table: pd.DataFrame, configuration: ModelConfiguration,
                 per_outcome: int, out_dir: Path, *, gradcam: dict | None = None,
                 progress: bool = False) -> tuple[pd.DataFrame, str]:
    """Draw one image of each gallery patient: the ROI with its outline, or Grad-CAM for a deep model.

    Returns:
        The gallery table (``outcome, patient_id, roi_id, modality, prob, threshold, path, caption``)
        and a note saying how cases were picked and what the images show.
    """
    if per_outcome <= 0 or predictions.empty:
        return pd.DataFrame(), "No case gallery (report.gradcam_examples is 0)."
    cases = pick_cases(predictions, per_outcome)
    missing = [outcome for outcome in OUTCOME_ORDER if outcome not in set(cases["outcome"])]
    heads, network = _gradcam_parts(gradcam)
    out_dir = Path(out_dir)
    records = []
    with Progress(len(cases), "case gallery", unit="case", enabled=progress) as bar:
        for case in cases.itertuples():
            records.append(_draw_case(case, cohort_table, configuration, out_dir, heads, network))
            bar.update()
    note = (f"Cases from distinct patients, up to {per_outcome} per outcome, from the chosen model's out-of-fold "
            "predictions at each fold's frozen threshold: the most confident true and false positives (highest "
            "probability) and true and false negatives (lowest). One image per patient (its first "
            f"{configuration.modalities[0]} image).")
    if missing:
        note += f" No {', '.join(missing)} case: the model made no such call."
    note += " " + _gradcam_note(configuration, gradcam, heads)
    return pd.DataFrame.from_records(records), note


def _gradcam_parts(gradcam: dict | None):
    if not gradcam or not gradcam.get("tensors"):
        return {}, None
    # imported on use: the deep features import torch, which a radiomic model never needs
    from dlradiomics.features.deep import create_backbone

    return heads_from_tensors(gradcam["tensors"]), create_backbone(gradcam["backbone"], gradcam["weights"],
                                                                   weights_dir=gradcam.get("weights_dir"))


def _gradcam_note(configuration: ModelConfiguration, gradcam: dict | None, heads: dict) -> str:
    if "deep" not in configuration.kinds:
        return ("The chosen model reads radiomic features only, so no Grad-CAM is shown: Grad-CAM explains a CNN, "
                "and no CNN takes part in this model's prediction. The images show the lesion outline (white).")
    if not heads:
        return "The chosen model reads deep features, but no Grad-CAM head could be trained, so none is shown."
    return (f"Grad-CAM explains the deep part of the chosen model ({configuration.label}): the gradient of a linear "
            f"head trained on the {gradcam['backbone']} embeddings the model reads, through the frozen backbone's "
            "last convolutional block, shows where in the crop the CNN finds evidence of malignancy. The model's "
            "own classifier (on PCA components of those embeddings) is not differentiable, so the head stands in "
            "for it; the lesion outline is white.")


def _draw_case(case, cohort_table: pd.DataFrame, configuration: ModelConfiguration, out_dir: Path,
               heads: dict, network) -> dict:
    record = {"outcome": case.outcome, "patient_id": case.patient_id, "roi_id": "", "modality": "",
              "prob": case.prob, "threshold": case.threshold, "path": "", "caption": ""}
    rows = cohort_table[(cohort_table["patient_id"].astype(str) == str(case.patient_id))
                        & cohort_table["modality"].isin(configuration.modalities)]
    if rows.empty:
        return record
    rows = rows.assign(_order=rows["modality"].map({m: i for i, m in enumerate(configuration.modalities)}))
    row = rows.sort_values(["_order", "roi_id"]).iloc[0]
    record.update(roi_id=row["roi_id"], modality=row["modality"])
    name = f"{case.outcome}_{str(row['roi_id']).replace('/', '_').replace('#', '-')}.png"
    try:
        roi = load_row_roi(row)
        gradcam_shares = None
        if row["modality"] in heads:
            from dlradiomics.features.deep.gradcam import grad_cam_roi, save_overlay  # torch: deep models only

            result = grad_cam_roi(network, heads[row["modality"]], roi.image, roi.mask)
            path = save_overlay(result, out_dir / name)
            gradcam_shares = (result.lesion_mass_fraction, result.lesion_area_fraction)
        else:
            path = out_dir / name
            save_figure(roi_figure(roi.image, roi.mask), path)
    except Exception as error:  # one unreadable image must not cost the whole gallery
        logger.warning("case gallery: %s could not be drawn: %s", row["roi_id"], error)
        record["caption"] = f"could not be drawn: {error}"
        return record
    record["path"] = str(path)
    record["caption"] = case_caption(case.outcome, str(case.patient_id), str(row["modality"]), float(case.prob),
                                     float(case.threshold), gradcam_shares)
    return record

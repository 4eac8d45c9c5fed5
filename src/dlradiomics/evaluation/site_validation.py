"""Leave-one-site-out results, one held-out site at a time, said plainly when a site is too small.

Pooled over every held-out site, out-of-fold predictions are scored like any others
(`dlradiomics.evaluation.summarise_predictions`). Site by site, a site may hold few patients of a
class, or one class only: its AUC is then undefined, or its confidence interval wide, and the
table says so instead of printing a number that looks like any other.

Per site, sensitivity and specificity are proportions within one class, with Wilson intervals
(`scipy.stats.binomtest`); the AUC has DeLong's interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from dlradiomics.evaluation.reference import unit_interval
from dlradiomics.evaluation.stats import delong_auc_ci

# Below this many patients of a class in a held-out site, its interval is called wide.
FEW_PATIENTS_PER_CLASS = 10
SITE_COLUMNS = ("group", "fold", "patients", "benign", "malignant", "auc", "auc_ci_low", "auc_ci_high",
                "sensitivity", "sensitivity_ci_low", "sensitivity_ci_high", "specificity", "specificity_ci_low",
                "specificity_ci_high", "note")


def _proportion(successes: int, trials: int) -> tuple[float, float, float]:
    if trials == 0:
        return np.nan, np.nan, np.nan
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return successes / trials, float(interval.low), float(interval.high)


def per_site_metrics(predictions: pd.DataFrame, fold_table: pd.DataFrame) -> pd.DataFrame:
    """Metrics of each held-out site from leave-one-site-out predictions.

    Args:
        predictions: out-of-fold predictions of one repeat (``patient_id, fold, y_true, prob,
            threshold``), as `dlradiomics.evaluation.cross_validate_patients` returns them.
        fold_table: the leave-one-group-out fold table (`fold_table_from_groups`: ``fold`` and
            ``group`` per patient).

    Returns:
        One row per site (``SITE_COLUMNS``), with a note for a site holding one class only or
        fewer than `FEW_PATIENTS_PER_CLASS` patients of a class.
    """
    names = fold_table.drop_duplicates("fold").set_index("fold")["group"] if "group" in fold_table else None
    rows = []
    for fold, site in predictions.groupby("fold", sort=True):
        y_true = site["y_true"].to_numpy().astype(int)
        called = site["prob"].to_numpy() >= site["threshold"].to_numpy()
        malignant, benign = int((y_true == 1).sum()), int((y_true == 0).sum())
        sensitivity = _proportion(int(called[y_true == 1].sum()), malignant)
        specificity = _proportion(int((~called[y_true == 0]).sum()), benign)
        auc = (np.nan, np.nan, np.nan)
        notes = []
        if malignant == 0 or benign == 0:
            present = "benign" if malignant == 0 else "malignant"
            notes.append(f"only {present} patients: the AUC and the "
                         f"{'sensitivity' if malignant == 0 else 'specificity'} are not defined")
        elif min(malignant, benign) < 2:
            # DeLong's variance needs two patients of each class (numpy would warn of zero degrees of freedom).
            auc = (float(roc_auc_score(y_true, site["prob"])), np.nan, np.nan)
            notes.append("one patient of a class: no interval for the AUC")
        else:
            auc = delong_auc_ci(y_true, site["prob"])
        few = [f"{count} {name}" for name, count in (("benign", benign), ("malignant", malignant))
               if 0 < count < FEW_PATIENTS_PER_CLASS]
        if few:
            notes.append(f"only {' and '.join(few)} patient(s): wide intervals, read with care")
        rows.append({"group": names.get(fold, str(fold)) if names is not None else str(fold), "fold": int(fold),
                     "patients": len(site), "benign": benign, "malignant": malignant,
                     "auc": auc[0], "auc_ci_low": auc[1], "auc_ci_high": auc[2],
                     "sensitivity": sensitivity[0], "sensitivity_ci_low": sensitivity[1],
                     "sensitivity_ci_high": sensitivity[2], "specificity": specificity[0],
                     "specificity_ci_low": specificity[1], "specificity_ci_high": specificity[2],
                     "note": "; ".join(notes)})
    return pd.DataFrame(rows, columns=list(SITE_COLUMNS))


@dataclass
class SiteValidation:
    """Leave-one-site-out cross-validation of a few configurations, beside the study's main folds.

    Args:
        column: the manifest column naming each patient's site.
        fold_table: one fold per site (``patient_id, repeat, fold, group``).
        summary: one row per role: the configuration and its pooled out-of-fold metrics with CIs.
        per_site: one row per role and site (`SITE_COLUMNS` with ``role`` and ``configuration``),
            the reference's own calls among them when the study has one.
        oof: the out-of-fold predictions of every role (``role`` column added).
    """

    column: str
    fold_table: pd.DataFrame
    summary: pd.DataFrame
    per_site: pd.DataFrame
    oof: pd.DataFrame


def reference_predictions(reference_scores: pd.Series, fold_table: pd.DataFrame, labels: pd.Series,
                          positive_at: float) -> pd.DataFrame:
    """A reference's calls as out-of-fold predictions, so that sites can score it like a model.

    The score is mapped onto [0, 1] with its cut-off (`unit_interval`: ranks and calls unchanged).

    Args:
        reference_scores: score per patient (index ``patient_id``); patients without one are left out.
        fold_table: the leave-one-site-out fold table.
        labels: label per patient (index ``patient_id``).
        positive_at: the reference's cut-off.

    Returns:
        ``patient_id, repeat, fold, y_true, prob, threshold`` rows.
    """
    scores = pd.to_numeric(reference_scores, errors="coerce").rename(index=str).dropna()
    folds = fold_table.assign(patient_id=fold_table["patient_id"].astype(str))
    folds = folds[folds["patient_id"].isin(scores.index) & folds["patient_id"].isin(labels.index.astype(str))]
    unit_scores, unit_cutoff = unit_interval(scores.reindex(folds["patient_id"]).to_numpy(dtype=float), positive_at)
    return pd.DataFrame({"patient_id": folds["patient_id"].to_numpy(), "repeat": folds["repeat"].to_numpy(),
                         "fold": folds["fold"].to_numpy(),
                         "y_true": labels.rename(index=str).reindex(folds["patient_id"]).to_numpy().astype(int),
                         "prob": unit_scores, "threshold": unit_cutoff})

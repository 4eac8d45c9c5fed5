"""A model against a clinical reference operating point on the same patients.

A study may name a reference: a per-patient score read by a clinician (the BI-RADS category) and
the rule that turns it into a call (BI-RADS >= 4: biopsy). The model's out-of-fold calls at its
frozen thresholds are compared with the reference's calls on the same patients:

- specificity, on the benign patients: McNemar's test of the paired calls (which of the two sends
  fewer benign lesions to biopsy);
- sensitivity, on the malignant patients: McNemar's test likewise;
- discrimination: DeLong's test of the model's AUC against the reference score's AUC (the
  reference used as a score, e.g. BI-RADS 2-5).

McNemar's test uses the discordant pairs only: ``b`` patients the model calls right and the
reference wrong, ``c`` the other way round. The exact test is the two-sided binomial test of
``b`` among ``b + c`` with probability 1/2; the mid-p version (Fagerland, Lydersen & Laake, BMC Med
Res Methodol 2013;13:91) subtracts half the probability of the observed table from each tail,
which keeps the exact test's guarantees in practice while being less conservative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binom

from dlradiomics.evaluation.configurations import CONFIG_COLUMNS
from dlradiomics.evaluation.grid_result import GridResult
from dlradiomics.evaluation.metrics import bootstrap_metrics
from dlradiomics.evaluation.stats import AucComparison, delong_test
from dlradiomics.models import CLINICAL_KIND, KINDS_OF_SOURCE

REFERENCE_METRICS = ("auc", "sensitivity", "specificity")


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test of two paired binary outcomes (each patient called right or wrong by both).

    Args:
        n: patients compared.
        first_only: patients the first rater called right and the second wrong (``b``).
        second_only: patients the second rater called right and the first wrong (``c``).
        p_exact: two-sided exact (binomial) p-value.
        p_mid: two-sided mid-p value.
    """

    n: int
    first_only: int
    second_only: int
    p_exact: float
    p_mid: float

    @property
    def discordant(self) -> int:
        """Patients on whom the two disagree."""
        return self.first_only + self.second_only


def mcnemar_test(first_correct: np.ndarray, second_correct: np.ndarray) -> McNemarResult:
    """McNemar's exact and mid-p tests of two raters' paired right/wrong calls.

    Args:
        first_correct: per patient, whether the first rater (the model) called the patient right.
        second_correct: the same patients, whether the second rater (the reference) did.

    Returns:
        The discordant counts and both p-values (1.0 when there is no discordant pair).

    Raises:
        ValueError: when the two arrays differ in length.
    """
    first = np.asarray(first_correct, dtype=bool)
    second = np.asarray(second_correct, dtype=bool)
    if first.shape != second.shape:
        raise ValueError(f"the two raters' calls have {first.shape} and {second.shape} patients")
    b = int(np.sum(first & ~second))
    c = int(np.sum(~first & second))
    n_discordant = b + c
    if n_discordant == 0:
        return McNemarResult(int(first.size), b, c, 1.0, 1.0)
    smaller = min(b, c)
    tail = float(binom.cdf(smaller, n_discordant, 0.5))
    p_exact = min(1.0, 2.0 * tail)
    p_mid = min(1.0, 2.0 * tail - float(binom.pmf(smaller, n_discordant, 0.5)))
    return McNemarResult(int(first.size), b, c, p_exact, p_mid)


@dataclass(frozen=True)
class ReferenceComparison:
    """A model's out-of-fold calls and scores against a reference on the same patients.

    Args:
        reference: the reference's name (e.g. "radiologist (BI-RADS >= 4)").
        positive_at: the reference score at and above which it calls a patient malignant.
        n_patients: patients compared (those with both a prediction and a reference score).
        n_malignant: malignant patients among them.
        n_benign: benign patients among them.
        model: model metrics (index ``REFERENCE_METRICS``; columns ``estimate, ci_low, ci_high``) at
            its frozen thresholds.
        reference_metrics: the reference's metrics at ``positive_at`` (AUC of the score as it is).
        specificity_test: McNemar on the benign patients (first = model).
        sensitivity_test: McNemar on the malignant patients (first = model).
        auc_test: DeLong, model minus reference.
    """

    reference: str
    positive_at: float
    n_patients: int
    n_malignant: int
    n_benign: int
    model: pd.DataFrame
    reference_metrics: pd.DataFrame
    specificity_test: McNemarResult
    sensitivity_test: McNemarResult
    auc_test: AucComparison


def compare_with_reference(predictions: pd.DataFrame, reference_scores: pd.Series, *, positive_at: float,
                           reference: str = "reference", n_boot: int = 1000, seed: int = 0) -> ReferenceComparison:
    """Compare a model's out-of-fold predictions with a reference operating point, patient by patient.

    Args:
        predictions: one row per patient of one repeat: ``patient_id, y_true, prob, threshold``
            (as `dlradiomics.evaluation.cross_validate_patients` returns them; ``threshold`` is the
            one frozen on that patient's training folds).
        reference_scores: the reference score of each patient, indexed by ``patient_id`` (NaN:
            the patient has none and is left out of the comparison).
        positive_at: the reference calls a patient malignant when its score is at least this.
        reference: the reference's name, for tables.
        n_boot: bootstrap resamples of the confidence intervals.
        seed: seed of the bootstrap.

    Returns:
        The comparison.

    Raises:
        ValueError: several repeats, or no patient of one class with both a prediction and a score.
    """
    if "repeat" in predictions and predictions["repeat"].nunique() > 1:
        raise ValueError("compare one repeat at a time: a patient must appear once")
    scores = pd.to_numeric(reference_scores, errors="coerce").rename("reference")
    scores.index = scores.index.astype(str)
    paired = predictions.assign(patient_id=predictions["patient_id"].astype(str)).join(scores, on="patient_id")
    paired = paired.dropna(subset=["reference", "prob"])
    y_true = paired["y_true"].to_numpy().astype(int)
    if len(np.unique(y_true)) < 2:
        raise ValueError(f"only {len(paired)} patient(s) have both a prediction and a reference score, "
                         "not of both classes")
    model_calls = paired["prob"].to_numpy() >= paired["threshold"].to_numpy()
    reference_calls = paired["reference"].to_numpy() >= positive_at
    malignant = y_true == 1
    model_right = model_calls == malignant
    reference_right = reference_calls == malignant
    model_metrics = bootstrap_metrics(y_true, paired["prob"], paired["threshold"], n_boot=n_boot, seed=seed)
    # The metrics take probabilities; a monotone rescaling of the score to [0, 1] keeps its ranks
    # (AUC) and its calls (the cut-off rescaled alike), which is all the reference is judged on.
    unit_scores, unit_cutoff = unit_interval(paired["reference"].to_numpy(dtype=float), positive_at)
    reference_metrics = bootstrap_metrics(y_true, unit_scores, unit_cutoff, n_boot=n_boot, seed=seed)
    return ReferenceComparison(
        reference=reference,
        positive_at=float(positive_at),
        n_patients=len(paired),
        n_malignant=int(malignant.sum()),
        n_benign=int((~malignant).sum()),
        model=model_metrics.loc[list(REFERENCE_METRICS)],
        reference_metrics=reference_metrics.loc[list(REFERENCE_METRICS)],
        specificity_test=mcnemar_test(model_right[~malignant], reference_right[~malignant]),
        sensitivity_test=mcnemar_test(model_right[malignant], reference_right[malignant]),
        auc_test=delong_test(y_true, paired["prob"].to_numpy(), paired["reference"].to_numpy(dtype=float)),
    )


def unit_interval(scores: np.ndarray, cutoff: float) -> tuple[np.ndarray, float]:
    """Scores and cut-off mapped by one increasing affine map onto [0, 1] (the scores' range).

    Metrics that take probabilities can then score a reference such as BI-RADS: its ranks (AUC)
    and its calls (score >= cut-off) are unchanged.
    """
    low, high = float(np.min(scores)), float(np.max(scores))
    span = high - low if high > low else 1.0
    return (scores - low) / span, (float(cutoff) - low) / span


@dataclass(frozen=True)
class ClinicalComparison:
    """The reference alone, the model alone and the two together, at the study's operating point.

    Args:
        reference: the reference's name.
        positive_at: its cut-off.
        table: one row per role (`COMPARISON_COLUMNS`): the reference, then each model role.
        comparisons: each model role's full comparison with the reference.
    """

    reference: str
    positive_at: float
    table: pd.DataFrame
    comparisons: dict[str, ReferenceComparison]


COMPARISON_COLUMNS = (
    "role", "configuration", "patients", "auc", "auc_ci_low", "auc_ci_high", "sensitivity", "sensitivity_ci_low",
    "sensitivity_ci_high", "specificity", "specificity_ci_low", "specificity_ci_high",
    "specificity_model_only", "specificity_reference_only", "p_specificity_mcnemar_mid", "p_specificity_mcnemar_exact",
    "sensitivity_model_only", "sensitivity_reference_only", "p_sensitivity_mcnemar_mid", "p_auc_delong",
)


def model_roles(grid: GridResult) -> dict[str, pd.Series]:
    """The configurations a clinical comparison shows, each the best of its kind by the grid's choice rule.

    Returns:
        ``model alone`` (imaging only), ``model + clinical variables`` (imaging with the clinical
        block), ``clinical variables alone``, each when the grid completed such a configuration,
        and ``chosen model`` when the chosen one is none of those.
    """
    completed = grid.completed
    kinds = completed["source"].map(lambda source: set(KINDS_OF_SOURCE.get(source, ())))
    with_clinical = kinds.map(lambda found: CLINICAL_KIND in found)
    with_imaging = kinds.map(lambda found: bool(found - {CLINICAL_KIND}))
    roles = {}
    for role, rows in (("model alone", completed[with_imaging & ~with_clinical]),
                       ("model + clinical variables", completed[with_imaging & with_clinical]),
                       ("clinical variables alone", completed[~with_imaging & with_clinical])):
        if not rows.empty:
            roles[role] = grid.best_of(rows)
    best = grid.best
    if not any(all(row[c] == best[c] for c in CONFIG_COLUMNS) for row in roles.values()):
        roles["chosen model"] = best
    return roles


def _configuration_label(row: pd.Series) -> str:
    return " | ".join(str(row[column]) for column in CONFIG_COLUMNS)


def compare_grid_with_reference(grid: GridResult, reference_scores: pd.Series, *, positive_at: float,
                                reference: str = "reference", n_boot: int = 1000, seed: int = 0) -> ClinicalComparison:
    """The reference beside the grid's best models of each role, on the patients they share.

    Each model is read at its thresholds frozen on training folds (first repeat); the reference at
    its cut-off. Each model row carries McNemar's tests against the reference (benign patients:
    specificity; malignant patients: sensitivity) and DeLong's test of the AUCs.

    Args:
        grid: the experiment grid's result.
        reference_scores: the reference score per patient (index ``patient_id``).
        positive_at: the reference's cut-off.
        reference: its name.
        n_boot: bootstrap resamples of the intervals.
        seed: seed of the bootstrap.

    Returns:
        The comparison table and each role's comparison.
    """
    oof = grid.oof[grid.oof["repeat"] == grid.oof["repeat"].min()]
    comparisons: dict[str, ReferenceComparison] = {}
    rows = []
    for role, configuration in model_roles(grid).items():
        predictions = grid.predictions_of(configuration)
        predictions = predictions[predictions["repeat"] == oof["repeat"].min()]
        comparison = compare_with_reference(predictions, reference_scores, positive_at=positive_at,
                                            reference=reference, n_boot=n_boot, seed=seed)
        comparisons[role] = comparison
        rows.append({"role": role, "configuration": _configuration_label(configuration),
                     **_metric_cells(comparison.model, comparison.n_patients),
                     "specificity_model_only": comparison.specificity_test.first_only,
                     "specificity_reference_only": comparison.specificity_test.second_only,
                     "p_specificity_mcnemar_mid": comparison.specificity_test.p_mid,
                     "p_specificity_mcnemar_exact": comparison.specificity_test.p_exact,
                     "sensitivity_model_only": comparison.sensitivity_test.first_only,
                     "sensitivity_reference_only": comparison.sensitivity_test.second_only,
                     "p_sensitivity_mcnemar_mid": comparison.sensitivity_test.p_mid,
                     "p_auc_delong": comparison.auc_test.p_value})
    if not comparisons:
        raise ValueError("no configuration of the grid completed")
    # The reference's own row: on the patients of the first model role (all roles share them
    # when every configuration scores every patient).
    first = next(iter(comparisons.values()))
    reference_row = {"role": f"{reference} alone", "configuration": f"{reference} (score >= {positive_at:g})",
                     **_metric_cells(first.reference_metrics, first.n_patients)}
    table = pd.DataFrame([reference_row, *rows]).reindex(columns=list(COMPARISON_COLUMNS))
    return ClinicalComparison(reference=reference, positive_at=float(positive_at), table=table,
                              comparisons=comparisons)


def _metric_cells(metrics: pd.DataFrame, n_patients: int) -> dict[str, float]:
    cells: dict[str, float] = {"patients": n_patients}
    for metric in REFERENCE_METRICS:
        cells[metric] = float(metrics.loc[metric, "estimate"])
        cells[f"{metric}_ci_low"] = float(metrics.loc[metric, "ci_low"])
        cells[f"{metric}_ci_high"] = float(metrics.loc[metric, "ci_high"])
    return cells

"""The answer first: the chosen model, its numbers, how it compares, and whether the run can be trusted.

The same headline opens the report and ends the terminal output of `run` and `demo`: the chosen
model with its AUC (95% CI) and its sensitivity and specificity at thresholds frozen on training
folds, the estimate of the whole procedure (grid + choice, nested), the runner-up with the DeLong
p-value, a clinical reference operating point when the study gives one, coverage (patients scored
of all), and the permuted-label canary's verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlradiomics.evaluation import GridResult, delong_test, summarise_predictions
from dlradiomics.evaluation.canary import CANARY_BAND, describe_canary_auc


def configuration_label(row: pd.Series) -> str:
    """``radiomic | US | single | logistic``: source, modalities, fusion, classifier."""
    return f"{row['source']} | {row['modalities']} | {row['fusion']} | {row['classifier']}"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% CI."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} (95% CI {self.low:.3f}-{self.high:.3f})"

    def short(self) -> str:
        """``0.936 (0.902-0.961)``."""
        return f"{self.value:.3f} ({self.low:.3f}-{self.high:.3f})"


# The grid's choice rule (`GridResult.choose_by`) in the headline's few words.
HEADLINE_RULES = {"auc": "highest mean inner-CV AUC",
                  "specificity_at_sensitivity": "highest mean inner-CV specificity at the target sensitivity"}


@dataclass(frozen=True)
class ReferenceOperatingPoint:
    """A clinical operating point the chosen model is compared with (e.g. the radiologist's BI-RADS >= 4).

    Args:
        name: what it is, e.g. ``"radiologist, BI-RADS >= 4"``.
        sensitivity: its sensitivity on the study's patients.
        specificity: its specificity on the same patients.
        n_patients: patients it was measured on.
        model_specificity: the chosen model's specificity on the same patients at its frozen
            threshold, when measured.
        mcnemar_p: paired test of the two on the benign patients, when measured.
    """

    name: str
    sensitivity: float
    specificity: float
    n_patients: int
    model_specificity: float | None = None
    mcnemar_p: float | None = None

    def describe(self) -> str:
        """One line for the headline."""
        text = (f"{self.name}: sensitivity {self.sensitivity:.3f}, specificity {self.specificity:.3f} "
                f"({self.n_patients} patients)")
        if self.model_specificity is not None:
            text += f"; the chosen model's specificity on the same patients {self.model_specificity:.3f}"
        if self.mcnemar_p is not None:
            text += f" (McNemar p = {format_p(self.mcnemar_p)})"
        return text


def reference_from_comparison(table: pd.DataFrame, chosen_label: str) -> ReferenceOperatingPoint | None:
    """The headline's reference operating point from a clinical comparison table.

    Args:
        table: one row per role, the reference's own row first, then the model roles, with columns
            ``configuration, patients, sensitivity, specificity`` and, on model rows,
            ``p_specificity_mcnemar_exact`` (the layout of the clinical comparison's table).
        chosen_label: the chosen model's label (`configuration_label`); the model row with this
            configuration gives the model's specificity on the same patients and McNemar's p.

    Returns:
        The reference operating point, or None for an empty table.
    """
    if table.empty:
        return None
    reference = table.iloc[0]
    models = table.iloc[1:]
    chosen = models[models["configuration"].astype(str) == chosen_label]
    model = chosen.iloc[0] if len(chosen) else None

    def number(row: pd.Series | None, column: str) -> float | None:
        if row is None or column not in row or pd.isna(row[column]):
            return None
        return float(row[column])

    return ReferenceOperatingPoint(name=str(reference["configuration"]), sensitivity=float(reference["sensitivity"]),
                                   specificity=float(reference["specificity"]), n_patients=int(reference["patients"]),
                                   model_specificity=number(model, "specificity"),
                                   mcnemar_p=number(model, "p_specificity_mcnemar_exact"))


@dataclass(frozen=True)
class CanaryVerdict:
    """The permuted-label canary's AUC and whether it lies in `CANARY_BAND`.

    Args:
        auc: the canary's AUC with its CI.
        what: which estimate it is (the whole procedure, or one configuration).
        n_patients: patients it was scored on (None when unknown).
    """

    auc: Estimate
    what: str
    n_patients: int | None = None

    @property
    def passed(self) -> bool:
        """Whether the AUC lies inside `CANARY_BAND`."""
        return CANARY_BAND[0] <= self.auc.value <= CANARY_BAND[1]

    def describe(self) -> str:
        """The verdict in words, as strong as its evidence (`describe_canary_auc`)."""
        return describe_canary_auc(self.auc.value, self.auc.low, self.auc.high, what=self.what,
                                   n_patients=self.n_patients)


@dataclass(frozen=True)
class Headline:
    """What the report opens with and `run`/`demo` print last.

    Args:
        model: the chosen configuration's label.
        selection_rule: how it was chosen.
        auc: its out-of-fold AUC.
        sensitivity: at thresholds frozen on training folds.
        specificity: at the same thresholds.
        threshold_rule: the threshold rule, in words.
        procedure_auc: the whole procedure's AUC (each outer fold's choice scored on that fold),
            when every configuration scored the same patients.
        runner_up: the runner-up's label, AUC and the DeLong p-value against the chosen model.
        reference: a clinical reference operating point, when the study gives one.
        scored: patients the chosen model scored.
        patients: patients of the study.
        canary: the canary's verdict, when it ran.
    """

    model: str
    selection_rule: str
    auc: Estimate
    sensitivity: Estimate
    specificity: Estimate
    threshold_rule: str
    scored: int
    patients: int
    procedure_auc: Estimate | None = None
    runner_up: tuple[str, float, float] | None = None
    reference: ReferenceOperatingPoint | None = None
    canary: CanaryVerdict | None = None

    def items(self) -> list[tuple[str, str]]:
        """(label, text) pairs, in reading order."""
        items = [("Chosen model", f"{self.model} ({self.selection_rule})"),
                 ("AUC", str(self.auc)),
                 ("At the frozen threshold", f"sensitivity {self.sensitivity.short()}, specificity "
                                             f"{self.specificity.short()} ({self.threshold_rule})")]
        if self.procedure_auc is not None:
            items.append(("Whole procedure", f"AUC {self.procedure_auc} for \"run the grid, keep the best by inner "
                                             "CV\", each outer fold's choice scored on that fold (nested)"))
        if self.runner_up is not None:
            label, auc, p = self.runner_up
            items.append(("Runner-up", f"{label}, AUC {auc:.3f}; DeLong p = {format_p(p)} against the chosen model"))
        if self.reference is not None:
            items.append(("Clinical reference", self.reference.describe()))
        items.append(("Coverage", f"{self.scored} of {self.patients} patients scored"
                      + ("" if self.scored == self.patients else
                         f" ({self.patients - self.scored} lack a modality the model needs)")))
        items.append(("Leakage canary", self.canary.describe() if self.canary is not None else "not run"))
        return items

    def lines(self) -> list[str]:
        """The headline as plain text lines for the terminal."""
        return [f"{label}: {text}" for label, text in self.items()]


def format_p(p: float) -> str:
    """``0.031``, ``<0.001``; NaN as ``n/a``."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _estimate(row: pd.Series, metric: str) -> Estimate:
    return Estimate(float(row[metric]), float(row[f"{metric}_ci_low"]), float(row[f"{metric}_ci_high"]))


def _first_repeat(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions[predictions["repeat"] == predictions["repeat"].min()]


def runner_up_comparison(grid: GridResult) -> tuple[str, float, float] | None:
    """The eligible candidate second by inner-CV AUC (comparison-only rows and, by default, configurations
    that do not score every patient never compete), its AUC, and DeLong's p against the chosen one."""
    ranked = grid.eligible.sort_values("inner_auc", ascending=False, kind="stable")
    if len(ranked) < 2:
        return None
    best, second = ranked.iloc[0], ranked.iloc[1]
    a = _first_repeat(grid.predictions_of(best)).set_index("patient_id")
    b = _first_repeat(grid.predictions_of(second)).set_index("patient_id")
    common = a.index.intersection(b.index)
    p = math.nan
    if len(common) >= 4 and a.loc[common, "y_true"].nunique() == 2:
        p = delong_test(a.loc[common, "y_true"].to_numpy(), a.loc[common, "prob"].to_numpy(),
                        b.loc[common, "prob"].to_numpy()).p_value
    return configuration_label(second), float(second["auc"]), float(p)


def procedure_estimate(grid: GridResult, *, n_boot: int, seed: int) -> Estimate | None:
    """AUC of "run the grid, keep the best by inner CV" scored fold by fold (None when configurations
    cover different patients, or nothing completed)."""
    summary = _procedure_summary(grid, n_boot=n_boot, seed=seed)
    return None if summary is None else _estimate(summary, "auc")


def _procedure_summary(grid: GridResult, *, n_boot: int, seed: int) -> pd.Series | None:
    """`summarise_predictions` of the nested procedure's predictions (None where `procedure_estimate` is)."""
    if grid.completed.empty:
        return None
    try:
        predictions = grid.nested_selection_predictions()
    except ValueError:
        return None
    if predictions.empty or predictions["y_true"].nunique() < 2:
        return None
    return summarise_predictions(predictions, n_boot=n_boot, seed=seed)


def canary_verdict(canary: GridResult | None, *, n_boot: int, seed: int) -> CanaryVerdict | None:
    """The canary's AUC: the whole procedure's when it can be scored, else its configuration chosen by inner CV."""
    if canary is None or canary.completed.empty:
        return None
    whole = _procedure_summary(canary, n_boot=n_boot, seed=seed)
    if whole is not None and len(canary.completed) > 1:
        return CanaryVerdict(_estimate(whole, "auc"),
                             f"the whole procedure over {len(canary.completed)} configurations, nested",
                             _patients(whole))
    # The canary's coverage rule may leave no eligible configuration (e.g. one modality of few patients):
    # its verdict then reads the best candidate by inner CV all the same.
    ranked = canary.eligible if canary.has_choice else canary.candidates
    chosen = ranked.loc[ranked["inner_auc"].idxmax()]
    return CanaryVerdict(_estimate(chosen, "auc"), f"{configuration_label(chosen)}, chosen by inner CV",
                         _patients(chosen))


def _patients(row: pd.Series) -> int | None:
    count = row.get("n_patients")
    return int(count) if count is not None and pd.notna(count) else None


def build_headline(grid: GridResult, *, patients: int, threshold_rule: str, canary: GridResult | None = None,
                   reference: ReferenceOperatingPoint | None = None, n_boot: int = 1000,
                   seed: int = 0) -> Headline | None:
    """The headline of a finished grid (None when no configuration completed).

    Args:
        grid: the experiment grid's result.
        patients: patients of the study (for coverage).
        threshold_rule: the threshold rule in words.
        canary: the grid on permuted labels, when it ran.
        reference: a clinical reference operating point, when the study gives one.
        n_boot: bootstrap resamples of the whole-procedure and canary CIs.
        seed: seed of the bootstrap.
    """
    if not grid.has_choice:
        return None
    best = grid.best
    scored = int(best["n_patients"]) if np.isfinite(best["n_patients"]) else 0
    return Headline(model=configuration_label(best), selection_rule=HEADLINE_RULES.get(grid.choose_by, grid.choose_by),
                    auc=_estimate(best, "auc"), sensitivity=_estimate(best, "sensitivity"),
                    specificity=_estimate(best, "specificity"), threshold_rule=threshold_rule, scored=scored,
                    patients=int(patients), procedure_auc=procedure_estimate(grid, n_boot=n_boot, seed=seed),
                    runner_up=runner_up_comparison(grid), reference=reference,
                    canary=canary_verdict(canary, n_boot=n_boot, seed=seed))

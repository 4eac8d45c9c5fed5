"""What the experiment grid gives back, and the analyses of it: the best model, paper-style tables,
and the honest estimate of "run the grid, keep the best" (nested selection).

The best model is chosen on the training folds, never by test results: by its mean inner-CV AUC,
or, for a study that works at a clinical operating point (a target sensitivity), by the mean
inner-CV specificity at that sensitivity (ties broken by the inner-CV AUC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dlradiomics.evaluation.configurations import CONFIG_COLUMNS
from dlradiomics.evaluation.metrics import format_estimate
from dlradiomics.evaluation.splits import evaluated_patients
from dlradiomics.models import CLASSIFIERS

SELECTION_RULE = "highest mean inner-CV AUC on the training folds (test folds never consulted)"
COVERAGE_RULE = "only configurations that score every patient of the study are eligible"
ELIGIBILITY_COLUMNS = ("scored_patients", "study_patients", "eligible", "eligibility")


def coverage_eligibility(completed: pd.DataFrame, predictions: pd.DataFrame, study_patients: pd.Index,
                         require_full_coverage: bool) -> pd.DataFrame:
    """Which configurations score every patient of the study, and so may be chosen.

    Args:
        completed: Rows of configurations that ran (``CONFIG_COLUMNS``).
        predictions: Their patient predictions (``CONFIG_COLUMNS``, ``repeat``, ``patient_id``).
        study_patients: The patients a configuration must score.
        require_full_coverage: When False every completed configuration is eligible (the words
            still say how many patients each scores).

    Returns:
        One row per completed configuration: ``CONFIG_COLUMNS``, ``scored_patients`` (fewest
        over repeats), ``study_patients``, ``eligible`` and ``eligibility`` (the reason in words).
    """
    keys = completed[list(CONFIG_COLUMNS)]
    if predictions.empty:
        table = keys.assign(scored_patients=0)
    else:
        scored = (predictions.groupby([*CONFIG_COLUMNS, "repeat"])["patient_id"].nunique()
                  .groupby(list(CONFIG_COLUMNS)).min().rename("scored_patients").reset_index())
        table = keys.merge(scored, on=list(CONFIG_COLUMNS), how="left").fillna({"scored_patients": 0})
    table["scored_patients"] = table["scored_patients"].astype(int)
    n_study = len(study_patients)
    table["study_patients"] = n_study
    full = table["scored_patients"] >= n_study
    table["eligible"] = full | (not require_full_coverage)
    table["eligibility"] = [
        "eligible: scores every patient" if covers
        else f"not eligible: scores {count} of {n_study} patients" if require_full_coverage
        else f"eligible (coverage not required): scores {count} of {n_study} patients"
        for covers, count in zip(full, table["scored_patients"])
    ]
    return table.reset_index(drop=True)


def eligible_rows(completed: pd.DataFrame, eligibility: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``completed`` that `coverage_eligibility` marked eligible (index kept)."""
    keys = pd.MultiIndex.from_frame(eligibility.loc[eligibility["eligible"], list(CONFIG_COLUMNS)])
    return completed[pd.MultiIndex.from_frame(completed[list(CONFIG_COLUMNS)]).isin(keys)]
# How the best configuration is chosen: the mean inner-CV scores compared, most important first.
CHOICE_SCORES: dict[str, tuple[str, ...]] = {
    "auc": ("inner_auc",),
    "specificity_at_sensitivity": ("inner_specificity", "inner_auc"),
}
SELECTION_RULES = {
    "auc": SELECTION_RULE,
    "specificity_at_sensitivity": "highest mean inner-CV specificity at the target sensitivity on the training "
                                  "folds, ties broken by inner-CV AUC (test folds never consulted)",
}


def _ranked_first(table: pd.DataFrame, scores: tuple[str, ...]) -> pd.Index:
    """Index labels of ``table`` sorted by the scores, best first (ties keep the table's order)."""
    return table.sort_values(list(scores), ascending=False, kind="stable").index


@dataclass
class GridRunStats:
    """How a grid ran: its cells, the workers that ran them, and what sharing fits saved.

    Args:
        cells: cells run (configurations x one outer fold x label worlds).
        workers: cells run at once.
        fit_hits: fits taken from a cell's cache instead of fitted again.
        fit_misses: fits computed.
        fit_seconds_saved: CPU seconds that the original fits of the hits took.
        wall_s: wall time of the whole grid (every label world).
    """

    cells: int = 0
    workers: int = 1
    fit_hits: int = 0
    fit_misses: int = 0
    fit_seconds_saved: float = 0.0
    wall_s: float = 0.0


@dataclass
class GridResult:
    """Results of `run_grid`.

    Args:
        results: One row per configuration (``CONFIG_COLUMNS``, ``status``, ``note``,
            ``n_patients``, ``inner_auc``, every metric with ``_ci_low``/``_ci_high``, ``wall_s``).
        oof: Out-of-fold patient predictions of every configuration (long table).
        fold_table: The outer folds every configuration used; its tested patients are the study's
            patients that a configuration must score to be eligible.
        terms: What each configuration's model read in each outer fold: its selected columns and
            their weights (``CONFIG_COLUMNS``, `dlradiomics.models.TERM_COLUMNS`, ``repeat, fold``).
        require_full_coverage: Only configurations that score every patient the folds test may be
            chosen (`best`, `nested_selection_predictions`). A model that scores a third of the
            cohort (early fusion on the patients having every modality) can win on inner AUC, but
            it cannot be used for the other patients, and its AUC is about other patients.
        run_stats: How the grid ran (None for results read back from a cache).
        choose_by: How `best` is chosen among the eligible: ``"auc"`` (mean inner-CV AUC) or
            ``"specificity_at_sensitivity"`` (mean inner-CV specificity at the threshold rule's
            target sensitivity, ties broken by inner-CV AUC).
    """

    results: pd.DataFrame
    oof: pd.DataFrame
    fold_table: pd.DataFrame
    terms: pd.DataFrame = field(default_factory=pd.DataFrame)
    require_full_coverage: bool = True
    run_stats: GridRunStats | None = None
    choose_by: str = "auc"

    def __post_init__(self) -> None:
        if self.choose_by not in CHOICE_SCORES:
            raise ValueError(f"choose_by must be one of {list(CHOICE_SCORES)}, got {self.choose_by!r}")

    @property
    def selection_rule(self) -> str:
        """How `best` was chosen, in words."""
        return SELECTION_RULES[self.choose_by]

    @property
    def choice_scores(self) -> tuple[str, ...]:
        """The inner-CV scores `best` compares, most important first."""
        return CHOICE_SCORES[self.choose_by]

    @property
    def completed(self) -> pd.DataFrame:
        """Rows of configurations that ran."""
        return self.results[self.results["status"] == "ok"]

    @property
    def candidates(self) -> pd.DataFrame:
        """Completed rows that may be chosen: not those marked ``comparison_only`` (e.g. CNN baselines)."""
        completed = self.completed
        if "comparison_only" not in completed.columns:
            return completed
        return completed[~completed["comparison_only"].astype("boolean").fillna(False).astype(bool)]

    @property
    def study_patients(self) -> pd.Index:
        """The patients the outer folds test (every patient, except training-only ones of a fixed split)."""
        return evaluated_patients(self.fold_table)

    def eligibility(self) -> pd.DataFrame:
        """Which candidate configurations may be chosen, and why not (see `coverage_eligibility`).

        Comparison-only rows (e.g. CNN baselines) are never candidates, so they have no row here.
        """
        return coverage_eligibility(self.candidates, self.oof, self.study_patients, self.require_full_coverage)

    @property
    def eligible(self) -> pd.DataFrame:
        """Candidate rows that may be chosen (see ``require_full_coverage``)."""
        return eligible_rows(self.candidates, self.eligibility())

    @property
    def has_choice(self) -> bool:
        """Whether some configuration may be chosen."""
        return not self.candidates.empty and not self.eligible.empty

    def no_choice_reason(self) -> str:
        """Why no configuration may be chosen (empty when one may)."""
        if self.candidates.empty:
            return "no configuration of the grid completed"
        if self.has_choice:
            return ""
        return (f"no configuration scores every one of the {len(self.study_patients)} patients of the study "
                "(early fusion scores only patients having every modality of its set; a single-modality model "
                "only patients imaged in it); add late fusion (ensemble, stacking) or a modality every patient "
                "has, or let a partial model be chosen with 'choice: {require_full_coverage: false}'")

    @property
    def best(self) -> pd.Series:
        """The eligible configuration with the best mean inner-CV score (training folds only; see `choose_by`).

        Raises:
            ValueError: When no configuration completed, or none scores every patient while
                ``require_full_coverage`` is on (`no_choice_reason` says which).
        """
        if not self.has_choice:
            raise ValueError(self.no_choice_reason())
        return self.best_of(self.eligible)

    def best_of(self, rows: pd.DataFrame) -> pd.Series:
        """The best of some completed rows of `results` by the choice rule (e.g. the best without clinical variables).

        Raises:
            ValueError: when ``rows`` is empty.
        """
        if rows.empty:
            raise ValueError("no configuration of the grid completed")
        return rows.loc[_ranked_first(rows, self.choice_scores)[0]]

    def predictions_of(self, configuration: Mapping[str, str] | pd.Series) -> pd.DataFrame:
        """Out-of-fold predictions of one configuration.

        Args:
            configuration: Anything with the keys ``CONFIG_COLUMNS`` (e.g. a row of `results`).

        Returns:
            Its rows of `oof`.
        """
        return _rows_of(self.oof, configuration)

    def terms_of(self, configuration: Mapping[str, str] | pd.Series) -> pd.DataFrame:
        """What one configuration's model read in each outer fold (rows of `terms`; empty if none recorded).

        Args:
            configuration: Anything with the keys ``CONFIG_COLUMNS`` (e.g. a row of `results`).
        """
        return self.terms if self.terms.empty else _rows_of(self.terms, configuration)

    def auc_table(self, metric: str = "auc") -> pd.DataFrame:
        """Paper-style table: one row per source x modality set x fusion, one column per classifier.

        Args:
            metric: Metric to show, with its CI.

        Returns:
            Formatted ``estimate (low-high)`` strings; the seven registered classifiers first, in
            registry order, then any classifier of the study's own in order of appearance.
        """
        completed = self.completed.copy()
        completed["cell"] = [
            format_estimate(row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"])
            for _, row in completed.iterrows()
        ]
        table = completed.pivot(index=["source", "modalities", "fusion"], columns="classifier", values="cell")
        own = [name for name in completed["classifier"].unique() if name not in CLASSIFIERS]
        return table[[name for name in CLASSIFIERS if name in table.columns] + own]

    def best_per_setting(self) -> pd.DataFrame:
        """For each source x modality set x fusion, the classifier with the best inner-CV score (`choose_by`).

        Returns:
            One row per setting with the chosen classifier and its out-of-fold metrics.
        """
        completed = self.completed
        # A row without an inner score (threshold from training predictions) ranks last, not as an error.
        setting = ["source", "modalities", "fusion"]
        ranked = completed.loc[_ranked_first(completed, self.choice_scores)]
        chosen = ranked.groupby(setting, sort=False).head(1).sort_values(setting, kind="stable")
        columns = [
            *CONFIG_COLUMNS, "n_patients", *dict.fromkeys(["inner_auc", *self.choice_scores]), "auc", "auc_ci_low",
            "auc_ci_high", "sensitivity", "specificity", "accuracy",
        ]
        return chosen.reindex(columns=columns).reset_index(drop=True)

    def nested_selection_patients(self) -> pd.Index:
        """The patients the nested-selection estimate is computed over.

        Every patient of the study when coverage is required; otherwise the patients every
        completed configuration scores (in every repeat), so that each fold's choice is scored on
        the same patients whichever configuration wins it.
        """
        candidates = self.eligible[list(CONFIG_COLUMNS)]
        oof = self.oof.merge(candidates, on=list(CONFIG_COLUMNS))
        if oof.empty:
            return pd.Index([], name="patient_id")
        per_configuration = oof.groupby([*CONFIG_COLUMNS, "repeat"])["patient_id"].apply(
            lambda patients: set(patients.astype(str)))
        common = set.intersection(*per_configuration.tolist())
        return pd.Index(sorted(common), name="patient_id")

    def nested_selection_predictions(self) -> pd.DataFrame:
        """Test predictions of the configuration each outer fold would have chosen by its inner-CV score.

        Scoring these estimates the performance of the whole procedure "run the grid, keep the
        best", selection included, without optimism from picking the winner on test results.
        Only eligible configurations compete (see ``require_full_coverage``), and the predictions
        are those of `nested_selection_patients`, one common set whichever configuration each
        fold chooses.

        Returns:
            Prediction rows (with the configuration columns) of the chosen configuration per fold.

        Raises:
            ValueError: If no configuration is eligible.
        """
        if not self.has_choice:
            raise ValueError(self.no_choice_reason())
        candidates = self.eligible[list(CONFIG_COLUMNS)]
        oof = self.oof.merge(candidates, on=list(CONFIG_COLUMNS))
        oof = oof[oof["patient_id"].astype(str).isin(self.nested_selection_patients())]
        scores = list(self.choice_scores)
        fold_scores = oof.groupby(["repeat", "fold", *CONFIG_COLUMNS], as_index=False)[scores].first()
        ranked = fold_scores.loc[_ranked_first(fold_scores, self.choice_scores)]
        chosen = ranked.groupby(["repeat", "fold"], sort=False).head(1)
        return oof.merge(chosen[["repeat", "fold", *CONFIG_COLUMNS]], on=["repeat", "fold", *CONFIG_COLUMNS])


def _rows_of(table: pd.DataFrame, configuration: Mapping[str, str] | pd.Series) -> pd.DataFrame:
    mask = np.logical_and.reduce([table[column] == configuration[column] for column in CONFIG_COLUMNS])
    return table[mask]

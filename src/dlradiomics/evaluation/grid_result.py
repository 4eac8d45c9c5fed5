"""What the experiment grid gives back, and the analyses of it: the best model, paper-style tables,
and the honest estimate of "run the grid, keep the best" (nested selection).

The best model is chosen by its mean inner-CV AUC on the training folds, never by test results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dlradiomics.evaluation.configurations import CONFIG_COLUMNS
from dlradiomics.evaluation.metrics import format_estimate
from dlradiomics.models import CLASSIFIERS

SELECTION_RULE = "highest mean inner-CV AUC on the training folds (test folds never consulted)"


@dataclass
class GridResult:
    """Results of `run_grid`.

    Args:
        results: One row per configuration (``CONFIG_COLUMNS``, ``status``, ``note``,
            ``n_patients``, ``inner_auc``, every metric with ``_ci_low``/``_ci_high``, ``wall_s``).
        oof: Out-of-fold patient predictions of every configuration (long table).
        fold_table: The outer folds every configuration used.
        selection_rule: How `best` was chosen.
        terms: What each configuration's model read in each outer fold: its selected columns and
            their weights (``CONFIG_COLUMNS``, `dlradiomics.models.TERM_COLUMNS`, ``repeat, fold``).
    """

    results: pd.DataFrame
    oof: pd.DataFrame
    fold_table: pd.DataFrame
    selection_rule: str = SELECTION_RULE
    terms: pd.DataFrame = field(default_factory=pd.DataFrame)

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
    def best(self) -> pd.Series:
        """The candidate configuration with the highest mean inner-CV AUC (training folds only)."""
        candidates = self.candidates
        if candidates.empty:
            raise ValueError("no configuration of the grid completed")
        return candidates.loc[candidates["inner_auc"].idxmax()]

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
        """For each source x modality set x fusion, the classifier with the best inner-CV AUC.

        Returns:
            One row per setting with the chosen classifier and its out-of-fold metrics.
        """
        completed = self.completed
        # A row without an inner AUC (threshold from training predictions) ranks last, not as an error.
        ranking = completed["inner_auc"].fillna(-np.inf)
        chosen = completed.loc[ranking.groupby([completed[c] for c in ("source", "modalities", "fusion")]).idxmax()]
        columns = [
            *CONFIG_COLUMNS, "n_patients", "inner_auc", "auc", "auc_ci_low", "auc_ci_high",
            "sensitivity", "specificity", "accuracy",
        ]
        return chosen[columns].reset_index(drop=True)

    def nested_selection_predictions(self) -> pd.DataFrame:
        """Test predictions of the configuration each outer fold would have chosen by inner AUC.

        Scoring these estimates the performance of the whole procedure "run the grid, keep the
        best", selection included, without optimism from picking the winner on test results.

        Returns:
            Prediction rows (with the configuration columns) of the chosen configuration per fold.

        Raises:
            ValueError: If the completed configurations do not cover the same patients.
        """
        oof = self.oof.merge(self.candidates[list(CONFIG_COLUMNS)], on=list(CONFIG_COLUMNS))
        patient_sets = oof.groupby(list(CONFIG_COLUMNS))["patient_id"].apply(frozenset)
        if patient_sets.nunique() > 1:
            raise ValueError("configurations cover different patients; nested selection needs the same patients")
        fold_scores = oof.groupby(["repeat", "fold", *CONFIG_COLUMNS], as_index=False)["inner_auc"].first()
        chosen = fold_scores.loc[fold_scores.groupby(["repeat", "fold"])["inner_auc"].idxmax()]
        return oof.merge(chosen[["repeat", "fold", *CONFIG_COLUMNS]], on=["repeat", "fold", *CONFIG_COLUMNS])


def _rows_of(table: pd.DataFrame, configuration: Mapping[str, str] | pd.Series) -> pd.DataFrame:
    mask = np.logical_and.reduce([table[column] == configuration[column] for column in CONFIG_COLUMNS])
    return table[mask]

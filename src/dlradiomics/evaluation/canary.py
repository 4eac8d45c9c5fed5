"""The leakage canary: with labels permuted between patients, an honest pipeline scores AUC ~0.5.

Any step that sees test patients' labels (selection on all data, a threshold or ensemble weights
fitted on test predictions, images of one patient on both sides of a split) lets a model "learn"
permuted labels, and the canary's AUC rises above chance. Far below chance is a problem too: a
model that reliably predicts the opposite has also learnt something it should not have.

A study's canary (`run_grid_with_canary`) is the whole procedure on permuted labels: every
configuration of the grid, selection included, on the grid's own outer folds, then "keep the best
by inner AUC" (`judge_grid_canary`). It runs in the grid's cells, so the steps that read no labels
(imputation, scaling, PCA on each training fold) are fitted once for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score

from dlradiomics.evaluation.cells import CANARY_WORLD, GRID_WORLD
from dlradiomics.evaluation.configurations import CONFIG_COLUMNS
from dlradiomics.evaluation.crossval import FoldScheme, cross_validate_patients
from dlradiomics.evaluation.grid import run_grid, run_grid_worlds
from dlradiomics.evaluation.grid_result import GridResult
from dlradiomics.evaluation.metrics import summarise_predictions
from dlradiomics.evaluation.splits import RepeatedPatientKFold

EstimatorOrBuilder = BaseEstimator | Callable[[pd.DataFrame, np.ndarray], BaseEstimator]
# A canary AUC outside this band is a problem, in either direction.
CANARY_BAND = (0.40, 0.60)
NESTED_LABEL = "run the grid, keep the best by inner AUC (nested)"


def describe_canary_auc(auc: float, low: float, high: float, *, what: str, n_patients: int | None = None,
                        band: tuple[float, float] = CANARY_BAND) -> str:
    """One canary AUC in words, as strong as its evidence (the report's headline and the run log say this).

    Inside the band it passed. Outside the band it is flagged either way, but only a 95% CI that
    excludes 0.5 earns the strong wording (leakage above, an anti-signal below): when the CI contains
    0.5 the text leads with that, since chance alone explains such an AUC on few patients.

    Args:
        auc: the canary's AUC on permuted labels.
        low: lower bound of its 95% CI.
        high: upper bound of its 95% CI.
        what: which estimate it is (the whole procedure, or one configuration).
        n_patients: patients it was scored on (said when chance may explain it).
        band: the AUC band of chance.

    Returns:
        ``AUC 0.512 (0.470-0.550) on permuted labels (what), inside [0.40, 0.60]: passed``, or
        ``outside [0.40, 0.60] but its 95% CI contains 0.5: consistent with chance on 40 patients; ...``,
        or ``PROBLEM: AUC ... is outside [0.40, 0.60], below: ...``.
    """
    band_text = f"[{band[0]:.2f}, {band[1]:.2f}]"
    figure = f"AUC {auc:.3f} ({low:.3f}-{high:.3f}) on permuted labels ({what})"
    if band[0] <= auc <= band[1]:
        return f"{figure}, inside {band_text}: passed"
    if low <= 0.5 <= high:
        patients = f" on {int(n_patients)} patients" if n_patients is not None and np.isfinite(n_patients) else ""
        return (f"outside {band_text} but its 95% CI contains 0.5: consistent with chance{patients}; rerun with more "
                f"patients or repeats ({figure})")
    direction = ("above: something lets the models see test labels" if auc > band[1] else
                 "below: the pipeline learns an anti-signal from how patients were split or grouped")
    return f"PROBLEM: {figure} is outside {band_text}, {direction}"


@dataclass(frozen=True)
class CanaryResult:
    """Outcome of a canary run.

    Args:
        aucs: One row per permutation (and configuration, for a grid) with its out-of-fold AUC.
        mean_auc: Mean of those AUCs.
        tolerance: Allowed distance of ``mean_auc`` from 0.5.
        passed: ``abs(mean_auc - 0.5) <= tolerance``.
    """

    aucs: pd.DataFrame
    mean_auc: float
    tolerance: float
    passed: bool


def permute_patient_labels(y: np.ndarray, groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """Shuffle labels between patients, keeping every image of a patient on that patient's new label.

    Args:
        y: Row labels.
        groups: Patient id of each row.
        seed: Seed of the permutation.

    Returns:
        Permuted row labels (same class counts over patients).
    """
    groups = np.asarray(groups)
    patient_labels = pd.Series(np.asarray(y)).groupby(groups).first()
    shuffled = np.random.default_rng(seed).permutation(patient_labels.to_numpy())
    new_label = pd.Series(shuffled, index=patient_labels.index)
    return new_label.reindex(groups).to_numpy()


def permute_table_labels(feature_tables: Mapping[str, pd.DataFrame], seed: int = 0) -> dict[str, pd.DataFrame]:
    """Feature tables whose labels are permuted between patients, the same way in every table.

    Args:
        feature_tables: Image-level feature tables by kind (``patient_id`` and ``label`` columns).
        seed: Seed of the permutation.

    Returns:
        The tables with permuted ``label`` columns (every image of a patient keeps one label).
    """
    patients = pd.concat([table[["patient_id", "label"]] for table in feature_tables.values()])
    patients = patients.assign(patient_id=patients["patient_id"].astype(str)).drop_duplicates("patient_id")
    new_labels = pd.Series(
        permute_patient_labels(patients["label"].to_numpy(), patients["patient_id"].to_numpy(), seed),
        index=patients["patient_id"].to_numpy(),
    )
    return {
        kind: table.assign(label=new_labels.reindex(table["patient_id"].astype(str)).to_numpy())
        for kind, table in feature_tables.items()
    }


def run_canary(
    estimator: EstimatorOrBuilder,
    X: pd.DataFrame,
    y: np.ndarray | pd.Series,
    groups: np.ndarray | None = None,
    *,
    outer: pd.DataFrame | FoldScheme | None = None,
    n_permutations: int = 3,
    tolerance: float = 0.07,
    seed: int = 0,
    n_jobs: int = 1,
) -> CanaryResult:
    """Cross-validate an estimator on patient-permuted labels and check the AUC stays near 0.5.

    Args:
        estimator: Unfitted classifier, or a function ``build(X, y_permuted) -> classifier`` for
            procedures that touch the whole data set before cross-validation (which is what the
            canary exists to catch).
        X: Modelling table (index: patient id).
        y: Row labels.
        groups: Patient id of each row; default ``X.index``.
        outer: Fold table or scheme; default stratified grouped 5-fold.
        n_permutations: Number of independent permutations.
        tolerance: Allowed distance of the mean AUC from 0.5.
        seed: Seed of permutation ``i`` is ``seed + i``.
        n_jobs: Outer folds in parallel.

    Returns:
        The `CanaryResult`.
    """
    groups = np.asarray(X.index if groups is None else groups).astype(str)
    rows = []
    for permutation in range(n_permutations):
        permuted = permute_patient_labels(np.asarray(y), groups, seed=seed + permutation)
        model = estimator if isinstance(estimator, BaseEstimator) else estimator(X, permuted)
        oof = cross_validate_patients(
            model,
            X,
            permuted,
            groups,
            outer=RepeatedPatientKFold(seed=seed + permutation) if outer is None else outer,
            seed=seed,
            n_jobs=n_jobs,
        )
        rows.append({"permutation": permutation, "auc": roc_auc_score(oof["y_true"], oof["prob"])})
    return _verdict(pd.DataFrame(rows), tolerance)


def run_grid_canary(
    feature_tables: Mapping[str, pd.DataFrame],
    *,
    n_permutations: int = 1,
    tolerance: float = 0.07,
    seed: int = 0,
    **grid_options,
) -> tuple[CanaryResult, list[GridResult]]:
    """Run the experiment grid (or a subset, via ``grid_options``) on patient-permuted labels.

    Args:
        feature_tables: Image-level feature tables by kind, as for `run_grid`.
        n_permutations: Number of permutations.
        tolerance: Allowed distance of the mean AUC over all configurations from 0.5.
        seed: Seed of the permutations.
        **grid_options: Passed to `run_grid` (sources, modality_sets, classifiers, ...).

    Returns:
        ``(canary, grid_results)``; the canary's table has one row per permutation and
        configuration.
    """
    rows, grids = [], []
    for permutation in range(n_permutations):
        permuted_tables = permute_table_labels(feature_tables, seed=seed + permutation)
        grid = run_grid(permuted_tables, seed=seed + permutation, **grid_options)
        grids.append(grid)
        completed = grid.completed[["source", "modalities", "fusion", "classifier", "auc", "auc_ci_low", "auc_ci_high"]]
        rows.append(completed.assign(permutation=permutation))
    return _verdict(pd.concat(rows, ignore_index=True), tolerance), grids


def _verdict(aucs: pd.DataFrame, tolerance: float) -> CanaryResult:
    mean_auc = float(aucs["auc"].mean())
    return CanaryResult(aucs=aucs, mean_auc=mean_auc, tolerance=tolerance, passed=abs(mean_auc - 0.5) <= tolerance)


def run_grid_with_canary(
    feature_tables: Mapping[str, pd.DataFrame],
    *,
    canary_seed: int = 0,
    run_grid_itself: bool = True,
    **grid_options,
) -> tuple[GridResult | None, GridResult]:
    """The experiment grid and its permuted-label canary, run together.

    The canary is every configuration of the grid on labels permuted between patients
    (`permute_table_labels`), on the grid's outer folds (made from the real labels, which the
    permuted labels know nothing of). Running both in the same cells shares the fits that read
    no labels; everything that reads labels (selection, classifiers, weights, thresholds) is fitted
    again on the permuted ones.

    Args:
        feature_tables: image-level feature tables by kind, as for `run_grid`.
        canary_seed: seed of the permutation.
        run_grid_itself: False to run the canary alone (e.g. when the grid's results are cached);
            pass the grid's fold table as ``outer`` then.
        **grid_options: as for `run_grid`.

    Returns:
        ``(grid, canary)``; ``grid`` is None when ``run_grid_itself`` is False.
    """
    permuted = permute_table_labels(feature_tables, seed=canary_seed)
    worlds = {GRID_WORLD: feature_tables, CANARY_WORLD: permuted} if run_grid_itself else {CANARY_WORLD: permuted}
    if not run_grid_itself and not isinstance(grid_options.get("outer"), pd.DataFrame):
        raise ValueError("a canary run alone needs the grid's fold table as outer=, so both use the same folds")
    results = run_grid_worlds(worlds, **grid_options)
    return results.get(GRID_WORLD), results[CANARY_WORLD]


@dataclass(frozen=True)
class GridCanaryVerdict:
    """The canary of a whole grid: each configuration's permuted-label AUC and the nested procedure's.

    Args:
        table: one row per configuration and one for the nested procedure (``what``, ``auc``,
            ``auc_ci_low``, ``auc_ci_high``, ``n_patients``, ``problem``), the nested row first.
        band: AUCs outside this band are problems.
        nested_note: how the nested estimate was made (or why it could not be).
    """

    table: pd.DataFrame
    band: tuple[float, float]
    nested_note: str

    @property
    def nested(self) -> pd.Series | None:
        """The row of "run the grid, keep the best" on permuted labels (None when not computed)."""
        rows = self.table[self.table["what"] == NESTED_LABEL]
        return None if rows.empty else rows.iloc[0]

    @property
    def problems(self) -> pd.DataFrame:
        """Rows whose canary AUC lies outside the band."""
        return self.table[self.table["problem"]]

    @property
    def passed(self) -> bool:
        """No canary AUC outside the band."""
        return self.problems.empty


def judge_grid_canary(
    canary: GridResult,
    *,
    band: tuple[float, float] = CANARY_BAND,
    n_boot: int = 1000,
    seed: int = 0,
) -> GridCanaryVerdict:
    """Flag every canary AUC outside ``band``, the nested "keep the best" procedure's included.

    The nested estimate takes, in each outer fold, the configuration with the best inner AUC on
    the permuted labels, as the grid's nested estimate does on the real ones. It needs one set of
    patients: when configurations score different patients (early fusion leaves out patients
    lacking a modality), only those that score every patient scored by any configuration take part.

    Args:
        canary: the grid run on permuted labels.
        band: the AUC band of chance.
        n_boot: bootstrap resamples of the nested AUC's CI.
        seed: seed of the bootstrap.

    Returns:
        The `GridCanaryVerdict`.
    """
    completed = canary.completed
    rows = [
        {"what": _configuration_label(row), "auc": row["auc"], "auc_ci_low": row["auc_ci_low"],
         "auc_ci_high": row["auc_ci_high"], "n_patients": row["n_patients"]}
        for _, row in completed.iterrows()
    ]
    note = "no configuration completed on permuted labels"
    if not completed.empty:
        oof = canary.oof.merge(completed[list(CONFIG_COLUMNS)], on=list(CONFIG_COLUMNS))
        patients = oof.groupby(list(CONFIG_COLUMNS))["patient_id"].apply(frozenset)
        everyone = frozenset().union(*patients)
        eligible = patients[patients.apply(len) == len(everyone)] if (patients.apply(len) == len(everyone)).any() \
            else patients[patients.apply(len) == patients.apply(len).max()]
        chosen_from = completed.merge(eligible.index.to_frame(index=False), on=list(CONFIG_COLUMNS))
        nested_oof = GridResult(results=chosen_from, oof=canary.oof, fold_table=canary.fold_table) \
            .nested_selection_predictions()
        summary = summarise_predictions(nested_oof, n_boot=n_boot, seed=seed)
        rows.insert(0, {"what": NESTED_LABEL, "auc": summary["auc"], "auc_ci_low": summary["auc_ci_low"],
                        "auc_ci_high": summary["auc_ci_high"], "n_patients": summary["n_patients"]})
        note = (f"chosen in each outer fold among {len(chosen_from)} of {len(completed)} configurations"
                + ("" if len(chosen_from) == len(completed) else " (those scoring every patient)"))
    table = pd.DataFrame(rows, columns=["what", "auc", "auc_ci_low", "auc_ci_high", "n_patients"])
    table["problem"] = (table["auc"] < band[0]) | (table["auc"] > band[1])
    return GridCanaryVerdict(table=table, band=band, nested_note=note)


def _configuration_label(row: pd.Series) -> str:
    return " | ".join(str(row[column]) for column in CONFIG_COLUMNS)

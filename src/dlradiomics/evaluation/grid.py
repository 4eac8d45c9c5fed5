"""The experiment grid: feature source x modality set x fusion x classifier, all on the same folds.

Feature sources: ``radiomic`` (PyRadiomics blocks), ``deep`` (CNN embedding blocks) and ``dlr``
(both kinds together). For one modality the rows are images (predictions averaged per patient);
for several modalities the rows are patients (see `dlradiomics.models.build_model_table`).

- One block (``radiomic`` or ``deep`` with one modality): the three fusions collapse to one
  model, recorded once as ``fusion="single"``.
- ``dlr`` with one modality fuses across the two kinds: early = `DLRFusion` (PCA over radiomic +
  deep, then one classifier); ensemble / stacking = one model per kind block.
- Several modalities: `EarlyFusion`, `WeightedEnsembleFusion`, `StackingFusion` over the blocks,
  or `DLRFusion(strategy=...)` for ``dlr``.

Every configuration is cross-validated on the same outer folds, so their out-of-fold predictions
can be compared patient by patient (DeLong). The best model is chosen by its mean inner-CV AUC on
the training folds, never by test results.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator

from dlradiomics.evaluation.crossval import FoldScheme, cross_validate_patients, resolve_fold_table
from dlradiomics.evaluation.metrics import format_estimate, summarise_predictions
from dlradiomics.evaluation.splits import RepeatedPatientKFold
from dlradiomics.evaluation.threshold import ThresholdRule
from dlradiomics.models import (
    CLASSIFIERS,
    DEFAULT_SELECTION,
    DLRFusion,
    EarlyFusion,
    MissingBlockWarning,
    SelectionFallbackWarning,
    StackingFusion,
    WeightedEnsembleFusion,
    build_model_table,
    make_pipeline,
)

SOURCES = ("radiomic", "deep", "dlr")
FUSIONS = ("early", "ensemble", "stacking")
KINDS_OF_SOURCE = {"radiomic": ("radiomic",), "deep": ("deep",), "dlr": ("radiomic", "deep")}
DEFAULT_SELECTIONS: dict[str, tuple[str, ...] | None] = {
    "radiomic": DEFAULT_SELECTION,
    # The paper compresses each modality's CNN embedding to 32 principal components.
    "deep": ("pca:32",),
    "dlr": ("pca:32",),
}
CONFIG_COLUMNS = ("source", "modalities", "fusion", "classifier")
SELECTION_RULE = "highest mean inner-CV AUC on the training folds (test folds never consulted)"


@dataclass(frozen=True)
class GridConfiguration:
    """One cell of the grid.

    Args:
        source: ``radiomic``, ``deep`` or ``dlr``.
        modalities: Modalities used, e.g. ``("US",)``.
        fusion: ``single``, ``early``, ``ensemble`` or ``stacking``.
        classifier: A name from ``CLASSIFIERS``.
    """

    source: str
    modalities: tuple[str, ...]
    fusion: str
    classifier: str

    @property
    def label(self) -> str:
        """Readable name, e.g. ``dlr | US+MG | stacking | svm``."""
        return f"{self.source} | {'+'.join(self.modalities)} | {self.fusion} | {self.classifier}"

    def key(self) -> dict[str, str]:
        """The identifying columns of results and predictions tables."""
        return {
            "source": self.source,
            "modalities": "+".join(self.modalities),
            "fusion": self.fusion,
            "classifier": self.classifier,
        }


@dataclass
class GridResult:
    """Results of `run_grid`.

    Args:
        results: One row per configuration (``CONFIG_COLUMNS``, ``status``, ``note``,
            ``n_patients``, ``inner_auc``, every metric with ``_ci_low``/``_ci_high``, ``wall_s``).
        oof: Out-of-fold patient predictions of every configuration (long table).
        fold_table: The outer folds every configuration used.
        selection_rule: How `best` was chosen.
    """

    results: pd.DataFrame
    oof: pd.DataFrame
    fold_table: pd.DataFrame
    selection_rule: str = SELECTION_RULE

    @property
    def completed(self) -> pd.DataFrame:
        """Rows of configurations that ran."""
        return self.results[self.results["status"] == "ok"]

    @property
    def best(self) -> pd.Series:
        """The configuration with the highest mean inner-CV AUC (training folds only)."""
        completed = self.completed
        if completed.empty:
            raise ValueError("no configuration of the grid completed")
        return completed.loc[completed["inner_auc"].idxmax()]

    def predictions_of(self, configuration: Mapping[str, str] | pd.Series) -> pd.DataFrame:
        """Out-of-fold predictions of one configuration.

        Args:
            configuration: Anything with the keys ``CONFIG_COLUMNS`` (e.g. a row of `results`).

        Returns:
            Its rows of `oof`.
        """
        mask = np.logical_and.reduce([self.oof[column] == configuration[column] for column in CONFIG_COLUMNS])
        return self.oof[mask]

    def auc_table(self, metric: str = "auc") -> pd.DataFrame:
        """Paper-style table: one row per source x modality set x fusion, one column per classifier.

        Args:
            metric: Metric to show, with its CI.

        Returns:
            Formatted ``estimate (low-high)`` strings.
        """
        completed = self.completed.copy()
        completed["cell"] = [
            format_estimate(row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"])
            for _, row in completed.iterrows()
        ]
        table = completed.pivot(index=["source", "modalities", "fusion"], columns="classifier", values="cell")
        return table[[name for name in CLASSIFIERS if name in table.columns]]

    def best_per_setting(self) -> pd.DataFrame:
        """For each source x modality set x fusion, the classifier with the best inner-CV AUC.

        Returns:
            One row per setting with the chosen classifier and its out-of-fold metrics.
        """
        completed = self.completed
        chosen = completed.loc[completed.groupby(["source", "modalities", "fusion"])["inner_auc"].idxmax()]
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
        oof = self.oof.merge(self.completed[list(CONFIG_COLUMNS)], on=list(CONFIG_COLUMNS))
        patient_sets = oof.groupby(list(CONFIG_COLUMNS))["patient_id"].apply(frozenset)
        if patient_sets.nunique() > 1:
            raise ValueError("configurations cover different patients; nested selection needs the same patients")
        fold_scores = oof.groupby(["repeat", "fold", *CONFIG_COLUMNS], as_index=False)["inner_auc"].first()
        chosen = fold_scores.loc[fold_scores.groupby(["repeat", "fold"])["inner_auc"].idxmax()]
        return oof.merge(chosen[["repeat", "fold", *CONFIG_COLUMNS]], on=["repeat", "fold", *CONFIG_COLUMNS])


def default_modality_sets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Each modality alone, every pair, and all together (without duplicates).

    Args:
        modalities: Available modalities.

    Returns:
        The modality sets.
    """
    ordered = list(dict.fromkeys(modalities))
    sets = [(modality,) for modality in ordered]
    sets += list(itertools.combinations(ordered, 2))
    if len(ordered) > 2:
        sets.append(tuple(ordered))
    return sets


def grid_configurations(
    sources: Sequence[str],
    modality_sets: Sequence[Sequence[str]],
    fusions: Sequence[str],
    classifiers: Sequence[str],
) -> tuple[list[GridConfiguration], list[tuple[GridConfiguration, str]]]:
    """Expand the grid into configurations to run and configurations skipped (with why).

    Args:
        sources: Feature sources.
        modality_sets: Modality sets.
        fusions: Fusion strategies.
        classifiers: Classifier names.

    Returns:
        ``(to_run, skipped)``; ``skipped`` pairs a configuration with the reason.
    """
    unknown = [source for source in sources if source not in SOURCES] + [f for f in fusions if f not in FUSIONS]
    if unknown:
        raise ValueError(f"unknown sources or fusions {unknown}; sources: {SOURCES}, fusions: {FUSIONS}")
    to_run: list[GridConfiguration] = []
    skipped: list[tuple[GridConfiguration, str]] = []
    for source, modalities, classifier in itertools.product(sources, modality_sets, classifiers):
        modalities = tuple(modalities)
        if source != "dlr" and len(modalities) == 1:
            to_run.append(GridConfiguration(source, modalities, "single", classifier))
            for fusion in fusions:
                skipped.append(
                    (GridConfiguration(source, modalities, fusion, classifier),
                     "one feature block: every fusion is the single-block model (fusion='single')")
                )
            continue
        to_run.extend(GridConfiguration(source, modalities, fusion, classifier) for fusion in fusions)
    return to_run, skipped


def build_estimator(
    configuration: GridConfiguration,
    *,
    selections: Mapping[str, Sequence[str] | None] | None = None,
    dlr_components: int = 108,
    inner_cv: int = 3,
    random_state: int = 0,
) -> BaseEstimator:
    """The unfitted estimator of one configuration.

    Args:
        configuration: The grid cell.
        selections: Selector specs per source (default `DEFAULT_SELECTIONS`).
        dlr_components: PCA components of DLR fusion (the paper's 108).
        inner_cv: Inner folds of late fusion (ensemble weights, stacking meta-features).
        random_state: Seed of everything fitted.

    Returns:
        A scikit-learn classifier taking the configuration's modelling table.
    """
    selection = {**DEFAULT_SELECTIONS, **(selections or {})}[configuration.source]
    classifier = configuration.classifier
    fusion = configuration.fusion
    if fusion == "single":
        return make_pipeline(classifier, selection, random_state=random_state)
    if configuration.source == "dlr" and (fusion == "early" or len(configuration.modalities) > 1):
        return DLRFusion(
            strategy=fusion,
            n_components=dlr_components,
            classifier=classifier,
            meta="logistic",
            inner_cv=inner_cv,
            random_state=random_state,
        )
    if fusion == "early":
        return EarlyFusion(classifier=classifier, selection=selection, random_state=random_state)
    if fusion == "ensemble":
        return WeightedEnsembleFusion(
            classifier=classifier, selection=selection, inner_cv=inner_cv, random_state=random_state
        )
    return StackingFusion(
        classifier=classifier, selection=selection, meta="logistic", inner_cv=inner_cv, random_state=random_state
    )


def run_grid(
    feature_tables: Mapping[str, pd.DataFrame],
    *,
    sources: Sequence[str] = SOURCES,
    modality_sets: Sequence[Sequence[str]] | None = None,
    fusions: Sequence[str] = FUSIONS,
    classifiers: Sequence[str] = CLASSIFIERS,
    outer: pd.DataFrame | FoldScheme | None = None,
    threshold: ThresholdRule = "youden",
    inner_splits: int = 3,
    selections: Mapping[str, Sequence[str] | None] | None = None,
    dlr_components: int = 108,
    n_boot: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
) -> GridResult:
    """Cross-validate every configuration of the grid on the same patient-grouped outer folds.

    Args:
        feature_tables: Image-level feature tables by kind (``"radiomic"``, ``"deep"``).
        sources: Feature sources to run.
        modality_sets: Modality sets; default `default_modality_sets` of the modalities present.
        fusions: Fusion strategies for multi-block configurations.
        classifiers: Classifier names.
        outer: Fold table or fold scheme (default stratified grouped 5-fold), computed once over
            all patients so that every configuration sees the same folds.
        threshold: Threshold rule applied to inner out-of-fold predictions.
        inner_splits: Inner folds for the threshold and the inner AUC.
        selections: Selector specs per source, overriding `DEFAULT_SELECTIONS`.
        dlr_components: PCA components of DLR fusion.
        n_boot: Bootstrap resamples of each CI.
        seed: Seed of folds, models and bootstrap.
        n_jobs: Configurations run in parallel (joblib processes).

    Returns:
        The `GridResult`.
    """
    present = _modalities_by_kind(feature_tables)
    all_modalities = sorted(set().union(*present.values()))
    modality_sets = default_modality_sets(all_modalities) if modality_sets is None else modality_sets
    to_run, skipped = grid_configurations(sources, modality_sets, fusions, classifiers)
    patient_labels = _patient_labels(feature_tables)
    outer = RepeatedPatientKFold(seed=seed) if outer is None else outer
    fold_table = resolve_fold_table(outer, patient_labels.to_numpy(), patient_labels.index.to_numpy())

    runnable, unavailable = [], []
    for configuration in to_run:
        missing = [
            f"{modality}.{kind}"
            for kind in KINDS_OF_SOURCE[configuration.source]
            for modality in configuration.modalities
            if modality not in present.get(kind, set())
        ]
        if missing:
            unavailable.append((configuration, f"no features for block(s) {missing}"))
        else:
            runnable.append(configuration)

    outcomes = Parallel(n_jobs=n_jobs)(
        delayed(_run_configuration)(
            configuration,
            feature_tables,
            fold_table,
            threshold=threshold,
            inner_splits=inner_splits,
            selections=selections,
            dlr_components=dlr_components,
            n_boot=n_boot,
            seed=seed,
        )
        for configuration in runnable
    )
    rows = [row for row, _ in outcomes]
    rows += [
        {**configuration.key(), "status": "skipped", "note": reason} for configuration, reason in unavailable + skipped
    ]
    predictions = [oof for _, oof in outcomes if oof is not None]
    oof = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame(columns=[*CONFIG_COLUMNS])
    return GridResult(results=pd.DataFrame(rows), oof=oof, fold_table=fold_table)


def _run_configuration(
    configuration: GridConfiguration,
    feature_tables: Mapping[str, pd.DataFrame],
    fold_table: pd.DataFrame,
    *,
    threshold: ThresholdRule,
    inner_splits: int,
    selections: Mapping[str, Sequence[str] | None] | None,
    dlr_components: int,
    n_boot: int,
    seed: int,
) -> tuple[dict, pd.DataFrame | None]:
    """Cross-validate one configuration; a configuration the data cannot support becomes a row saying why."""
    started = time.perf_counter()
    level = "image" if len(configuration.modalities) == 1 else "patient"
    X, y, groups = build_model_table(
        dict(feature_tables), list(configuration.modalities), list(KINDS_OF_SOURCE[configuration.source]), level
    )
    estimator = build_estimator(
        configuration, selections=selections, dlr_components=dlr_components, inner_cv=inner_splits, random_state=seed
    )
    try:
        with warnings.catch_warnings():
            # Early fusion warns, per fold, about patients lacking a modality; the row's
            # n_patients and note report it once.
            warnings.simplefilter("ignore", MissingBlockWarning)
            # A selector that finds nothing significant in a small fold keeps its best k features
            # (by design, see models.selectors); warning for each of hundreds of fits only buries
            # the progress display.
            warnings.simplefilter("ignore", SelectionFallbackWarning)
            oof = cross_validate_patients(
                estimator,
                X,
                y,
                groups,
                outer=fold_table,
                threshold=threshold,
                inner_splits=inner_splits,
                unscored="drop",
                seed=seed,
            )
        summary = summarise_predictions(oof, n_boot=n_boot, seed=seed)
    except ValueError as error:
        # Data that cannot support the configuration (e.g. early fusion of modalities no patient
        # has together) is reported in the table, not allowed to stop the other configurations.
        return {**configuration.key(), "status": "skipped", "note": f"could not run: {error}"}, None
    n_candidates = X.index.nunique()
    n_scored = oof.groupby("repeat")["patient_id"].nunique().min()
    note = ""
    if n_scored < n_candidates:
        note = f"{n_candidates - n_scored} patient(s) could not be scored (missing blocks)"
    row = {
        **configuration.key(),
        "status": "ok",
        "note": note,
        "inner_auc": oof.groupby(["repeat", "fold"])["inner_auc"].first().mean(),
        **summary.to_dict(),
        "wall_s": time.perf_counter() - started,
    }
    return row, oof.assign(**configuration.key())


def _modalities_by_kind(feature_tables: Mapping[str, pd.DataFrame]) -> dict[str, set[str]]:
    if not feature_tables:
        raise ValueError("run_grid needs at least one feature table")
    return {kind: set(table["modality"].unique()) for kind, table in feature_tables.items()}


def _patient_labels(feature_tables: Mapping[str, pd.DataFrame]) -> pd.Series:
    rows = pd.concat([table[["patient_id", "label"]] for table in feature_tables.values()], ignore_index=True)
    rows["patient_id"] = rows["patient_id"].astype(str)
    labels_per_patient = rows.groupby("patient_id")["label"].nunique()
    conflicting = labels_per_patient.index[labels_per_patient > 1].tolist()
    if conflicting:
        raise ValueError(f"patients {conflicting[:10]} carry different labels in the feature tables")
    return rows.groupby("patient_id")["label"].first().astype(int)

"""Running the experiment grid: every model configuration cross-validated on the same outer folds.

Every configuration is cross-validated on the same patient-grouped outer folds, so their
out-of-fold predictions can be compared patient by patient (DeLong). The configuration space is in
`dlradiomics.evaluation.configurations`, how a configuration becomes an estimator in
`dlradiomics.models.factory`, and the analyses of the results in `dlradiomics.evaluation.grid_result`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence

import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator

from dlradiomics.evaluation.configurations import CONFIG_COLUMNS, default_modality_sets, grid_configurations
from dlradiomics.evaluation.crossval import FoldScheme, cross_validate_patients, resolve_fold_table
from dlradiomics.evaluation.grid_result import GridResult
from dlradiomics.evaluation.metrics import summarise_predictions
from dlradiomics.evaluation.splits import RepeatedPatientKFold, evaluated_patients, patient_labels_of
from dlradiomics.evaluation.threshold import ThresholdRule
from dlradiomics.models import (
    CLASSIFIERS,
    FUSIONS,
    SOURCES,
    DLRComposition,
    MissingBlockWarning,
    ModelConfiguration,
    SelectionFallbackWarning,
    TERM_COLUMNS,
    SelectionStep,
    build_estimator,
    build_model_table,
)


def run_grid(
    feature_tables: Mapping[str, pd.DataFrame],
    *,
    sources: Sequence[str] = SOURCES,
    modality_sets: Sequence[Sequence[str]] | None = None,
    fusions: Sequence[str] = FUSIONS,
    classifiers: Sequence[str] = CLASSIFIERS,
    custom_classifiers: Mapping[str, BaseEstimator] | None = None,
    outer: pd.DataFrame | FoldScheme | None = None,
    threshold: ThresholdRule = "youden",
    inner_splits: int = 3,
    selections: Mapping[str, Sequence[SelectionStep] | None] | None = None,
    dlr: DLRComposition | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    dlr_components: int | None = None,
) -> GridResult:
    """Cross-validate every configuration of the grid on the same patient-grouped outer folds.

    Args:
        feature_tables: Image-level feature tables by kind (``"radiomic"``, ``"deep"``).
        sources: Feature sources to run.
        modality_sets: Modality sets; default `default_modality_sets` of the modalities present.
        fusions: Fusion strategies for multi-block configurations.
        classifiers: Classifier names: registered ones (``CLASSIFIERS``) or keys of
            ``custom_classifiers``.
        custom_classifiers: Unfitted classifiers of the caller's own, by the name results show.
        outer: Fold table or fold scheme (default stratified grouped 5-fold), computed once over
            all patients so that every configuration sees the same folds.
        threshold: Threshold rule applied to inner out-of-fold predictions.
        inner_splits: Inner folds for the threshold and the inner AUC.
        selections: Selection steps per source, overriding `dlradiomics.models.DEFAULT_SELECTIONS`.
        dlr: How DLR fusion compresses its features (default: the paper's composition).
        n_boot: Bootstrap resamples of each CI.
        seed: Seed of folds, models and bootstrap.
        n_jobs: Configurations run in parallel (joblib processes).
        dlr_components: The earlier spelling of ``dlr.whole_table_components``.

    Returns:
        The `GridResult`.

    Raises:
        ValueError: On an unknown classifier name, source or fusion.
    """
    unknown = [name for name in classifiers if name not in CLASSIFIERS and name not in (custom_classifiers or {})]
    if unknown:
        raise ValueError(f"unknown classifier(s) {unknown}; registered: {list(CLASSIFIERS)}, "
                         f"own: {sorted(custom_classifiers or {})}")
    present = _modalities_by_kind(feature_tables)
    all_modalities = sorted(set().union(*present.values()))
    modality_sets = default_modality_sets(all_modalities) if modality_sets is None else modality_sets
    to_run, skipped = grid_configurations(sources, modality_sets, fusions, classifiers)
    patient_labels = patient_labels_of(feature_tables)
    outer = RepeatedPatientKFold(seed=seed) if outer is None else outer
    fold_table = resolve_fold_table(outer, patient_labels.to_numpy(), patient_labels.index.to_numpy())
    # A given fold table (a manifest column, a split file) may name patients without features; the
    # grid's patients are those of the feature tables, whom "scores every patient" refers to.
    fold_table = fold_table[fold_table["patient_id"].astype(str).isin(patient_labels.index)].reset_index(drop=True)

    runnable, unavailable = [], []
    for configuration in to_run:
        missing = [
            f"{modality}.{kind}"
            for kind in configuration.kinds
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
            custom_classifiers=custom_classifiers,
            dlr=dlr,
            dlr_components=dlr_components,
            n_boot=n_boot,
            seed=seed,
        )
        for configuration in runnable
    )
    rows = [row for row, _, _ in outcomes]
    rows += [
        {**configuration.key(), "status": "skipped", "note": reason} for configuration, reason in unavailable + skipped
    ]
    predictions = [oof for _, oof, _ in outcomes if oof is not None]
    oof = pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame(columns=[*CONFIG_COLUMNS])
    fitted_terms = [terms for _, _, terms in outcomes if terms is not None and len(terms)]
    terms = (pd.concat(fitted_terms, ignore_index=True) if fitted_terms
             else pd.DataFrame(columns=[*CONFIG_COLUMNS, *TERM_COLUMNS, "repeat", "fold"]))
    return GridResult(results=pd.DataFrame(rows), oof=oof, fold_table=fold_table, terms=terms)


def _run_configuration(
    configuration: ModelConfiguration,
    feature_tables: Mapping[str, pd.DataFrame],
    fold_table: pd.DataFrame,
    *,
    threshold: ThresholdRule,
    inner_splits: int,
    selections: Mapping[str, Sequence[SelectionStep] | None] | None,
    custom_classifiers: Mapping[str, BaseEstimator] | None,
    dlr: DLRComposition | None,
    dlr_components: int | None,
    n_boot: int,
    seed: int,
) -> tuple[dict, pd.DataFrame | None, pd.DataFrame | None]:
    """Cross-validate one configuration; a configuration the data cannot support becomes a row saying why.

    Returns:
        The results row, the out-of-fold predictions and what each outer fold's model read
        (`dlradiomics.models.model_terms`), the last two None for a configuration that could not run.
    """
    started = time.perf_counter()
    X, y, groups = build_model_table(
        dict(feature_tables), list(configuration.modalities), list(configuration.kinds), configuration.level
    )
    estimator = build_estimator(
        configuration,
        selections=selections,
        custom_classifiers=custom_classifiers,
        dlr=dlr,
        dlr_components=dlr_components,
        inner_cv=inner_splits,
        random_state=seed,
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
            oof, terms = cross_validate_patients(
                estimator,
                X,
                y,
                groups,
                outer=fold_table,
                threshold=threshold,
                inner_splits=inner_splits,
                unscored="drop",
                seed=seed,
                return_terms=True,
            )
        summary = summarise_predictions(oof, n_boot=n_boot, seed=seed)
    except ValueError as error:
        # Data that cannot support the configuration (e.g. early fusion of modalities no patient
        # has together) is reported in the table, not allowed to stop the other configurations.
        return {**configuration.key(), "status": "skipped", "note": f"could not run: {error}"}, None, None
    # Training-only patients (a fixed train/test split) are never scored, by design: only patients
    # the folds test can be unscored.
    n_candidates = pd.Index(X.index.astype(str).unique()).isin(evaluated_patients(fold_table)).sum()
    n_scored = oof.groupby("repeat")["patient_id"].nunique().min()
    note = ""
    if n_scored < n_candidates:
        note = f"{n_candidates - n_scored} of {n_candidates} test patient(s) could not be scored (missing blocks)"
    row = {
        **configuration.key(),
        "status": "ok",
        "note": note,
        "inner_auc": oof.groupby(["repeat", "fold"])["inner_auc"].first().mean(),
        **summary.to_dict(),
        "wall_s": time.perf_counter() - started,
    }
    return row, oof.assign(**configuration.key()), terms.assign(**configuration.key())


def _modalities_by_kind(feature_tables: Mapping[str, pd.DataFrame]) -> dict[str, set[str]]:
    if not feature_tables:
        raise ValueError("run_grid needs at least one feature table")
    return {kind: set(table["modality"].unique()) for kind, table in feature_tables.items()}

"""The paper's protocol, reproduced for comparison only: what the usual (leaky) procedure would report.

Lu et al. 2024 (and the templates papers of this kind use) evaluate on one fixed-seed 80/20 split
after fitting selection on every patient, set the ensemble weights and the operating threshold on
the test set, and report the configuration with the best test AUC. Each of those steps lets the
test patients' labels into the number reported (``docs/protocols.md`` gives the mechanism of each).
This module does exactly that, under its own name, so that a study can put the figure the paper's
protocol would have published beside the honest nested estimate of the same data, and measure the
difference (and the figure on permuted labels, where any AUC above 0.5 is leakage). It is never the
default and never fits the model a study saves.

The steps, per configuration of the grid:

1. the modelling table of every patient (train and test alike);
2. each feature block's selection (Mann-Whitney, Spearman, LASSO for radiomics; PCA for CNN
   embeddings) fitted on ALL rows, before the split (leak);
3. one stratified, patient-grouped 80/20 split by seed (`PatientHoldout`), the same for every
   configuration;
4. the model fitted on the training patients (no further selection; DLR's own PCA parts are
   fitted on training rows, so this preset leaks less than the paper there);
5. the weighted ensemble's block weights re-set from the blocks' accuracy on the test rows (leak);
6. the threshold set by Youden's index on the test patients (leak: accuracy, sensitivity and
   specificity);
7. the configuration reported: the highest test AUC of all (leak: a maximum over noisy estimates).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import softmax
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score

from dlradiomics.evaluation.canary import permute_table_labels
from dlradiomics.evaluation.configurations import CONFIG_COLUMNS, default_modality_sets, grid_configurations
from dlradiomics.evaluation.metrics import summarise_predictions
from dlradiomics.evaluation.splits import TRAIN_ONLY, PatientHoldout, patient_labels_of
from dlradiomics.evaluation.stats import paired_bootstrap_auc_test
from dlradiomics.evaluation.threshold import choose_threshold
from dlradiomics.models import (
    BLOCK_SEPARATOR,
    CLASSIFIERS,
    DEFAULT_SELECTIONS,
    FUSIONS,
    SOURCES,
    DLRComposition,
    DLRFusion,
    MissingBlockWarning,
    ModelConfiguration,
    SelectionFallbackWarning,
    SelectionStep,
    WeightedEnsembleFusion,
    aggregate_by_patient,
    blocks_of,
    build_estimator,
    build_model_table,
    kind_of,
    make_preprocessing,
)

PAPER_PROTOCOL = "paper"
NESTED_PROTOCOL = "nested"
PROTOCOLS = (NESTED_PROTOCOL, PAPER_PROTOCOL)
PAPER_PROTOCOL_NAME = "the paper's protocol (leaky; a reproduction for comparison, never the saved model)"
# No selection inside the model: the paper's protocol selected on every patient before the split.
_NO_SELECTION = {source: None for source in SOURCES}


@dataclass(frozen=True)
class PaperProtocolResult:
    """What the paper's protocol reports on a cohort.

    Args:
        results: One row per configuration: ``CONFIG_COLUMNS``, ``status``, ``note``,
            ``n_train``, ``n_test``, every metric with its CI on the test patients (at the
            threshold set on them), ``threshold``.
        predictions: Test patients' predictions of every configuration that ran
            (``patient_id, y_true, prob, threshold, repeat`` and ``CONFIG_COLUMNS``).
        split: The one split (`PatientHoldout` fold table: fold 0 test, `TRAIN_ONLY` training).
        permuted: Whether the labels were permuted between patients (a canary of the protocol).
    """

    results: pd.DataFrame
    predictions: pd.DataFrame
    split: pd.DataFrame
    permuted: bool = False

    @property
    def completed(self) -> pd.DataFrame:
        """Rows of configurations that ran."""
        return self.results[self.results["status"] == "ok"]

    @property
    def reported(self) -> pd.Series:
        """The row the paper's protocol reports: the highest test AUC of every configuration.

        Raises:
            ValueError: If no configuration ran.
        """
        completed = self.completed
        if completed.empty:
            raise ValueError("no configuration ran under the paper's protocol")
        return completed.loc[completed["auc"].idxmax()]

    def reported_predictions(self) -> pd.DataFrame:
        """Test-patient predictions of the reported configuration."""
        best = self.reported
        mask = np.logical_and.reduce([self.predictions[column] == best[column] for column in CONFIG_COLUMNS])
        return self.predictions[mask]


def run_paper_protocol(
    feature_tables: Mapping[str, pd.DataFrame],
    *,
    sources: Sequence[str] = SOURCES,
    modality_sets: Sequence[Sequence[str]] | None = None,
    fusions: Sequence[str] = FUSIONS,
    classifiers: Sequence[str] = CLASSIFIERS,
    custom_classifiers: Mapping[str, BaseEstimator] | None = None,
    selections: Mapping[str, Sequence[SelectionStep] | None] | None = None,
    dlr: DLRComposition | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    inner_splits: int = 3,
    n_boot: int = 1000,
    permute_labels: bool = False,
) -> PaperProtocolResult:
    """Run the paper's (leaky) protocol on every configuration of a grid; see the module docstring.

    Args:
        feature_tables: Image-level feature tables by kind (``"radiomic"``, ``"deep"``).
        sources: Feature sources.
        modality_sets: Modality sets (default: every combination of the modalities present).
        fusions: Fusion strategies of multi-block configurations.
        classifiers: Classifier names: registered ones or keys of ``custom_classifiers``.
        custom_classifiers: Unfitted classifiers of the caller's own, by name.
        selections: Selection steps per feature kind (``radiomic``, ``deep``), fitted on every
            patient before the split (default `dlradiomics.models.DEFAULT_SELECTIONS`).
        dlr: DLR composition (its PCA parts are fitted on the training patients).
        test_size: Fraction of patients in the test set (the paper: 0.2).
        seed: Seed of the split, of the models and of the bootstrap.
        inner_splits: Inner folds of late fusion (stacking meta-features, ensemble fit).
        n_boot: Bootstrap resamples of each CI (over test patients).
        permute_labels: Permute labels between patients first (seed ``seed``, as the canary does).

    Returns:
        The `PaperProtocolResult`.
    """
    if permute_labels:
        feature_tables = permute_table_labels(feature_tables, seed=seed)
    selections = {**DEFAULT_SELECTIONS, **(selections or {})}
    present = {kind: set(table["modality"].unique()) for kind, table in feature_tables.items()}
    modality_sets = (default_modality_sets(sorted(set().union(*present.values())))
                     if modality_sets is None else modality_sets)
    to_run, skipped = grid_configurations(sources, modality_sets, fusions, classifiers)
    labels = patient_labels_of(feature_tables)
    split = PatientHoldout(test_size=test_size, seed=seed).fold_table(labels.to_numpy(), labels.index.to_numpy())
    test_patients = set(split.loc[split["fold"] != TRAIN_ONLY, "patient_id"].astype(str))
    rows = [{**configuration.key(), "status": "skipped", "note": reason} for configuration, reason in skipped]
    predictions = []
    for configuration in to_run:
        missing = [f"{modality}.{kind}" for kind in configuration.kinds for modality in configuration.modalities
                   if modality not in present.get(kind, set())]
        if missing:
            rows.append({**configuration.key(), "status": "skipped", "note": f"no features for block(s) {missing}"})
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MissingBlockWarning)
                warnings.simplefilter("ignore", SelectionFallbackWarning)
                row, tested = _run_configuration(configuration, feature_tables, test_patients, selections=selections,
                                                 custom_classifiers=custom_classifiers, dlr=dlr, seed=seed,
                                                 inner_splits=inner_splits, n_boot=n_boot)
        except ValueError as error:
            rows.append({**configuration.key(), "status": "skipped", "note": f"could not run: {error}"})
            continue
        rows.append(row)
        predictions.append(tested)
    oof = (pd.concat(predictions, ignore_index=True) if predictions
           else pd.DataFrame(columns=["patient_id", "y_true", "prob", "threshold", "repeat", *CONFIG_COLUMNS]))
    return PaperProtocolResult(results=pd.DataFrame(rows), predictions=oof, split=split, permuted=permute_labels)


def select_on_every_patient(X: pd.DataFrame, y: pd.Series, selections: Mapping[str, Sequence[SelectionStep] | None],
                            *, seed: int) -> pd.DataFrame:
    """The paper's selection: each block's selection steps fitted on every row (train and test alike).

    Args:
        X: Modelling table (``"{block}__{feature}"`` columns, ``patient_id`` index).
        y: Labels of its rows.
        selections: Selection steps per feature kind.
        seed: Seed of the selectors (LASSO's inner folds).

    Returns:
        The selected table, columns still named by block; rows lacking a block keep NaN there.
    """
    parts = []
    for block, columns in blocks_of(X.columns).items():
        block_table = X[columns]
        present = block_table.notna().any(axis=1).to_numpy()
        steps = selections.get(kind_of(block))
        reducer = make_preprocessing(steps, random_state=seed).fit(block_table[present], y[present].to_numpy())
        reduced = reducer.transform(block_table[present])
        names = [f"{block}{BLOCK_SEPARATOR}{name}" for name in reduced.columns]
        values = np.full((len(X), len(names)), np.nan)
        values[present] = reduced.to_numpy()
        parts.append(pd.DataFrame(values, index=X.index, columns=names))
    return pd.concat(parts, axis=1)


def set_ensemble_weights_on_test(model: BaseEstimator, X_test: pd.DataFrame, y_test: np.ndarray) -> None:
    """The paper's ensemble weights: softmax of each block model's accuracy on the TEST rows (a leak).

    Does nothing for a model without ensemble weights.

    Args:
        model: A fitted `WeightedEnsembleFusion`, or `DLRFusion` with the ensemble strategy.
        X_test: The test rows.
        y_test: Their labels.
    """
    ensemble = model.fusion_ if isinstance(model, DLRFusion) else model
    if not isinstance(ensemble, WeightedEnsembleFusion):
        return
    probabilities = model.block_probabilities(X_test)
    accuracies = []
    for block in probabilities.columns:
        present = probabilities[block].notna().to_numpy()
        accuracies.append(accuracy_score(y_test[present] == model.classes_[1],
                                         probabilities[block].to_numpy()[present] >= 0.5) if present.any() else 0.0)
    ensemble.block_scores_ = dict(zip(probabilities.columns, accuracies))
    ensemble.weights_ = dict(zip(probabilities.columns, softmax(np.array(accuracies, dtype=float))))


def _run_configuration(configuration: ModelConfiguration, feature_tables: Mapping[str, pd.DataFrame],
                       test_patients: set[str], *, selections, custom_classifiers, dlr, seed: int,
                       inner_splits: int, n_boot: int) -> tuple[dict, pd.DataFrame]:
    X, y, groups = build_model_table(dict(feature_tables), list(configuration.modalities),
                                     list(configuration.kinds), configuration.level)
    X = select_on_every_patient(X, y, selections, seed=seed)
    is_test = groups.astype(str).isin(test_patients).to_numpy()
    model = build_estimator(configuration, selections=_NO_SELECTION, custom_classifiers=custom_classifiers, dlr=dlr,
                            inner_cv=inner_splits, random_state=seed)
    model.fit(X[~is_test], y[~is_test].to_numpy())
    set_ensemble_weights_on_test(model, X[is_test], y[is_test].to_numpy())
    prob = aggregate_by_patient(model.predict_proba(X[is_test])[:, 1], groups[is_test].to_numpy())
    truth = y[is_test].groupby(groups[is_test].to_numpy()).max().reindex(prob.index)
    scored = prob.notna().to_numpy()
    tested = pd.DataFrame({"patient_id": prob.index.astype(str)[scored], "y_true": truth.to_numpy()[scored],
                           "prob": prob.to_numpy()[scored], "repeat": 0})
    if tested["y_true"].nunique() < 2:
        raise ValueError("the test patients it scores hold a single class")
    threshold = choose_threshold(tested["y_true"].to_numpy(), tested["prob"].to_numpy(), "youden")
    tested["threshold"] = threshold
    summary = summarise_predictions(tested, n_boot=n_boot, seed=seed)
    n_test = len(set(groups[is_test].astype(str)))
    note = f"{n_test - len(tested)} of {n_test} test patient(s) could not be scored" if len(tested) < n_test else ""
    row = {**configuration.key(), "status": "ok", "note": note, "n_train": int(groups[~is_test].nunique()),
           "n_test": len(tested), **summary.to_dict(), "threshold": threshold}
    return row, tested.assign(**configuration.key())


def compare_protocols(paper: PaperProtocolResult, nested_predictions: pd.DataFrame, *, n_boot: int = 2000,
                      seed: int = 0) -> pd.Series:
    """The paper protocol's reported AUC against the honest nested estimate, with the difference's CI.

    The difference is taken on the patients both score (the paper protocol's test patients, each
    also scored out of fold by the nested procedure; with several repeats its probabilities are
    averaged per patient) by a paired, class-stratified bootstrap over those patients. The paper
    protocol's configuration is held fixed in the resamples, so the CI is of the difference
    between that reported model and the honest procedure on those patients.

    Args:
        paper: The paper protocol's result (its `reported` configuration).
        nested_predictions: The honest procedure's patient predictions
            (`GridResult.nested_selection_predictions`: ``patient_id, y_true, prob, repeat``).
        n_boot: Bootstrap resamples.
        seed: Bootstrap seed.

    Returns:
        ``paper_auc``, ``nested_auc_shared`` (the honest AUC on the shared patients),
        ``difference``, ``ci_low``, ``ci_high``, ``p_value``, ``n_shared``, ``what`` (the CI in words).

    Raises:
        ValueError: If fewer than two patients of each class are shared.
    """
    reported = paper.reported_predictions().assign(patient_id=lambda t: t["patient_id"].astype(str))
    nested = (nested_predictions.assign(patient_id=nested_predictions["patient_id"].astype(str))
              .groupby("patient_id").agg(y_true=("y_true", "max"), prob=("prob", "mean")))
    shared = reported.merge(nested, left_on="patient_id", right_index=True, suffixes=("_paper", "_nested"))
    if shared["y_true_paper"].value_counts().reindex([0, 1], fill_value=0).min() < 2:
        raise ValueError("the two protocols share too few patients of each class to compare them")
    if not (shared["y_true_paper"] == shared["y_true_nested"]).all():
        raise ValueError("the two protocols disagree on the labels of shared patients (different label sets?)")
    comparison = paired_bootstrap_auc_test(shared["y_true_paper"].to_numpy(), shared["prob_paper"].to_numpy(),
                                           shared["prob_nested"].to_numpy(), n_boot=n_boot, seed=seed)
    return pd.Series({
        "paper_auc": comparison.auc_a, "nested_auc_shared": comparison.auc_b, "difference": comparison.difference,
        "ci_low": comparison.ci_low, "ci_high": comparison.ci_high, "p_value": comparison.p_value,
        "n_shared": len(shared),
        "what": (f"paired bootstrap over the {len(shared)} test patients both protocols score "
                 "(the paper protocol's reported configuration held fixed)"),
    })

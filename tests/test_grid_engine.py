"""The grid engine: cells that share fits give exactly the predictions of cross-validating each
configuration alone, on one process, local processes or a Dask cluster, and sharing never lets a
test patient reach a fit."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from evaluation_data import make_feature_tables
from rich.console import Console
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import StandardScaler

from dlradiomics.evaluation import CONFIG_COLUMNS, cross_validate_patients, run_grid
from dlradiomics.evaluation.canary import NESTED_LABEL, judge_grid_canary, run_grid_with_canary
from dlradiomics.evaluation.cells import CANARY_WORLD, GRID_WORLD
from dlradiomics.evaluation.grid_result import GridResult
from dlradiomics.evaluation.scheduling import GridProgress, plan_cells
from dlradiomics.evaluation.splits import RepeatedPatientKFold
from dlradiomics.models import (
    LassoStep,
    MannWhitneyStep,
    ModelConfiguration,
    PCAStep,
    build_estimator,
    build_model_table,
    make_pipeline,
)
from dlradiomics.models.selectors import LassoSelector
from dlradiomics.models.shared_fits import FitCache, SharedFitPipeline, sharing_fits
from dlradiomics.study.progress import GridProgressDisplay

SELECTIONS = {"radiomic": (MannWhitneyStep(0.2), LassoStep()), "deep": (PCAStep(4),), "dlr": (PCAStep(4),)}
# Small enough for a test, rich enough for every kind of sharing: two classifiers behind each
# selection, DLR's ensemble and stacking behind the single-source block models, three outer folds.
GRID = dict(
    sources=("radiomic", "deep", "dlr"),
    modality_sets=[("US",)],
    fusions=("early", "ensemble", "stacking"),
    classifiers=("logistic", "rf"),
    outer=RepeatedPatientKFold(n_splits=3, seed=3),
    selections=SELECTIONS,
    dlr_components=6,
    inner_splits=2,
    n_boot=30,
    seed=3,
)


@pytest.fixture(scope="module")
def tables():
    return make_feature_tables(n_patients=48, modalities=("US", "MG"), signal=1.0, missing_fraction=0.2, seed=11)


@pytest.fixture(scope="module")
def in_process(tables):
    return run_grid(tables, n_jobs=1, **GRID)


def _probabilities(grid: GridResult) -> pd.DataFrame:
    return grid.oof.sort_values([*CONFIG_COLUMNS, "repeat", "fold", "patient_id"]).reset_index(drop=True)


def test_each_configuration_predicts_as_if_cross_validated_alone(tables, in_process):
    completed = in_process.completed
    assert len(completed) == 10  # radiomic and deep single, DLR early, ensemble and stacking; both classifiers
    options = {key: GRID[key] for key in ("selections", "dlr_components")}
    for _, row in completed.iterrows():
        configuration = ModelConfiguration(row["source"], tuple(row["modalities"].split("+")), row["fusion"],
                                           row["classifier"])
        X, y, groups = build_model_table(tables, list(configuration.modalities), list(configuration.kinds),
                                         configuration.level)
        alone = cross_validate_patients(
            build_estimator(configuration, inner_cv=2, random_state=3, **options), X, y, groups,
            outer=in_process.fold_table, inner_splits=2, unscored="drop", seed=3,
        )
        shared = in_process.predictions_of(row)
        pd.testing.assert_frame_equal(
            shared[list(alone.columns)].reset_index(drop=True), alone.reset_index(drop=True), check_exact=True,
            check_dtype=False,
        )
    assert in_process.run_stats.fit_hits > in_process.run_stats.fit_misses / 4  # sharing did happen


def test_cells_hand_back_text_in_pandas_default_storage(in_process):
    # cells hold text as Python strings (evaluation.python_strings); nothing outside them sees it
    assert in_process.oof["patient_id"].dtype == pd.Series(["a"]).dtype
    assert pd.Series(["a"]).dtype.storage != "python"


@pytest.mark.slow
def test_local_processes_give_identical_results(tables, in_process):
    in_processes = run_grid(tables, n_jobs=2, **GRID)
    assert in_processes.run_stats.cells > 1
    pd.testing.assert_frame_equal(_probabilities(in_processes), _probabilities(in_process), check_exact=True)
    pd.testing.assert_frame_equal(in_processes.results.drop(columns="wall_s"), in_process.results.drop(columns="wall_s"))


@pytest.mark.slow
def test_a_dask_cluster_gives_identical_results(tables, in_process):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_dask = run_grid(tables, scheduler=client, **GRID)
    assert on_dask.run_stats.workers == 2 and on_dask.run_stats.cells > 2
    pd.testing.assert_frame_equal(_probabilities(on_dask), _probabilities(in_process), check_exact=True)


class PatientMemory(ClassifierMixin, BaseEstimator):
    """Remembers each training patient's label and answers it back; 0.5 for a patient it never saw.

    Cross-validated honestly it scores AUC 0.5 (every test patient is new to it). A fit it was
    handed from other training rows would know test patients, and score near 1.
    """

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.memory_ = dict(zip(X.index, np.asarray(y)))
        return self

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)

    def predict_proba(self, X):
        positive = np.array([float(self.memory_.get(patient, 0.5)) for patient in X.index])
        return np.column_stack([1 - positive, positive])


def test_sharing_never_lets_a_test_patient_reach_a_fit(tables):
    grid, canary = run_grid_with_canary(
        tables, canary_seed=5, sources=("radiomic", "dlr"), modality_sets=[("US",)], fusions=("ensemble", "stacking"),
        classifiers=("memory", "logistic"), custom_classifiers={"memory": PatientMemory()}, selections=SELECTIONS,
        inner_splits=2, n_boot=20, seed=3, outer=RepeatedPatientKFold(n_splits=3, seed=3),
    )
    for result in (grid, canary):
        memory = result.completed[result.completed["classifier"] == "memory"]
        # radiomic single and DLR ensemble (stacking a constant 0.5 may not complete: nothing to stack)
        assert {"single", "ensemble"} <= set(memory["fusion"])
        assert (memory["auc"] == 0.5).all(), memory[["source", "modalities", "fusion", "auc"]]
        assert (memory["inner_auc"] == 0.5).all()


def _fold_rows(X: pd.DataFrame, patients: list[str]) -> pd.DataFrame:
    return X[X.index.isin(patients)]


def test_shared_selections_are_keyed_by_the_training_patients(tables):
    X, y, _ = build_model_table(tables, ["US"], ["radiomic"], "image")
    labels = pd.Series(y.to_numpy(), index=X.index)
    patients = sorted(set(X.index))
    first, second = patients[:30], patients[5:35]
    cache = FitCache()
    step = LassoSelector(inner_cv=2, random_state=0)
    fitted_first = cache.fit(step, _fold_rows(X, first), labels[labels.index.isin(first)].to_numpy())
    again = cache.fit(step, _fold_rows(X, first).copy(), labels[labels.index.isin(first)].to_numpy())
    assert again is fitted_first and cache.stats.hits == 1
    other_patients = cache.fit(step, _fold_rows(X, second), labels[labels.index.isin(second)].to_numpy())
    assert other_patients is not fitted_first
    # The same values under other patient ids are other training patients: fitted again.
    renamed = _fold_rows(X, first).rename(index=lambda patient: f"other-{patient}")
    assert cache.fit(step, renamed, labels[labels.index.isin(first)].to_numpy()) is not fitted_first
    # Selection reads labels: permuted labels fit again; scaling does not, so it is shared.
    permuted = np.random.default_rng(0).permutation(labels[labels.index.isin(first)].to_numpy())
    assert cache.fit(step, _fold_rows(X, first), permuted) is not fitted_first
    scaler = cache.fit(StandardScaler(), _fold_rows(X, first), labels[labels.index.isin(first)].to_numpy())
    assert cache.fit(StandardScaler(), _fold_rows(X, first), permuted) is scaler
    assert (cache.stats.hits, cache.stats.misses) == (2, 5)


def test_pipelines_share_steps_only_inside_sharing_fits(tables):
    X, y, _ = build_model_table(tables, ["US"], ["deep"], "image")
    assert type(make_pipeline("logistic", (PCAStep(4),))) is not SharedFitPipeline
    cache = FitCache()
    with sharing_fits(cache):
        logistic = make_pipeline("logistic", (PCAStep(4),)).fit(X, y.to_numpy())
        knn = make_pipeline("knn", (PCAStep(4),)).fit(X, y.to_numpy())
    assert isinstance(logistic, SharedFitPipeline)
    assert knn.named_steps["pca"] is logistic.named_steps["pca"]  # one PCA behind both classifiers
    plain = make_pipeline("knn", (PCAStep(4),)).fit(X, y.to_numpy())
    np.testing.assert_array_equal(plain.predict_proba(X), knn.predict_proba(X))


def test_label_free_steps_fitted_on_values_are_the_steps_scikit_learn_fits(tables):
    # Image level (a patient's rows share an index value), NaN to impute, float32 deep columns beside
    # float64 radiomic ones: the shared pipeline fits label-free steps on the table's values.
    X, y, _ = build_model_table(tables, ["US"], ["radiomic", "deep"], "image")
    X = X.astype({column: np.float32 for column in X.columns if ".deep__" in column})
    X = X.mask(np.random.default_rng(2).random(X.shape) < 0.05)
    X.index = pd.Index([f"P{row // 2:03d}" for row in range(len(X))], name="patient_id")
    train, test = X.iloc[: len(X) * 2 // 3], X.iloc[len(X) * 2 // 3:]
    labels = y.to_numpy()[: len(train)]
    plain = make_pipeline("logistic", (MannWhitneyStep(0.2), PCAStep(4))).fit(train, labels)
    with sharing_fits(FitCache()):
        shared = make_pipeline("logistic", (MannWhitneyStep(0.2), PCAStep(4))).fit(train, labels)
    plain_output, shared_output = test, test
    for (name, plain_step), (_, shared_step) in zip(plain.steps[:-1], shared.steps[:-1]):
        for attribute in ("feature_names_in_", "n_features_in_", "_sklearn_output_config"):
            np.testing.assert_equal(getattr(shared_step, attribute), getattr(plain_step, attribute), err_msg=name)
        plain_output, shared_output = plain_step.transform(plain_output), shared_step.transform(shared_output)
        pd.testing.assert_frame_equal(shared_output, plain_output, check_exact=True, obj=name)
    pd.testing.assert_frame_equal(shared[:-1].transform(test), plain[:-1].transform(test), check_exact=True)
    np.testing.assert_array_equal(shared.predict_proba(test), plain.predict_proba(test))
    # Columns in another order are not the fitted columns: scikit-learn's own check answers.
    with pytest.raises(ValueError, match="feature names"):
        shared.predict_proba(test[test.columns[::-1]])


def test_plan_covers_every_configuration_fold_and_world_once():
    configurations = [ModelConfiguration(source, ("US",), "single" if source != "dlr" else "ensemble", classifier)
                      for source in ("radiomic", "deep", "dlr") for classifier in ("logistic", "rf", "svm")]
    folds = [(0, fold) for fold in range(1, 6)]
    for workers in (1, 2, 8):
        cells = plan_cells(configurations, folds, [GRID_WORLD, CANARY_WORLD], workers)
        covered = [(cell.repeat, cell.fold, world, configuration)
                   for cell in cells for world in cell.worlds for configuration in cell.configurations]
        assert len(covered) == len(set(covered)) == len(configurations) * len(folds) * 2
        assert [cell.cost for cell in cells] == sorted((cell.cost for cell in cells), reverse=True)
        assert len(cells) >= min(3 * workers, len(configurations) * len(folds) * 2) if workers > 1 else len(cells) == 5


def test_progress_counts_up_to_every_unit_and_prints_plain_lines(tables):
    states: list[GridProgress] = []
    run_grid(tables, sources=("radiomic",), modality_sets=[("US",)], classifiers=("logistic",),
             selections={"radiomic": None}, inner_splits=2, n_boot=10, progress=states.append)
    assert states[0].units_done == 0 and states[-1].units_done == states[-1].units_total == 5
    assert states[-1].cells_done == states[-1].cells_total
    output = io.StringIO()
    console = Console(file=output, force_terminal=False, width=200)
    with GridProgressDisplay("grid", console, plain_interval_s=0.05) as display:
        display(GridProgress(1, 4, 5, 20, 1.0, 4.0, 2.0))
        import time

        time.sleep(0.3)
    lines = output.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("grid: 5/20 configuration-folds, 1/4 cells") for line in lines)
    assert "left" in lines[-1]


def test_the_canary_flags_aucs_outside_chance_in_either_direction(tables):
    grid, canary = run_grid_with_canary(tables, canary_seed=1, sources=("radiomic",), modality_sets=[("US",)],
                                        classifiers=("logistic", "knn"), selections={"radiomic": None},
                                        inner_splits=2, n_boot=20, seed=0)
    verdict = judge_grid_canary(canary, n_boot=20)
    assert verdict.table["what"].iloc[0] == NESTED_LABEL
    assert len(verdict.table) == 3 and verdict.nested is not None
    low = canary.results.assign(auc=np.where(canary.results["classifier"] == "knn", 0.307, 0.5))
    flagged = judge_grid_canary(GridResult(results=low, oof=canary.oof, fold_table=canary.fold_table), n_boot=20)
    problems = flagged.problems
    assert "radiomic | US | single | knn" in problems["what"].tolist() and not flagged.passed
    high = canary.results.assign(auc=0.65)
    assert len(judge_grid_canary(GridResult(results=high, oof=canary.oof, fold_table=canary.fold_table),
                                 n_boot=20).problems) >= 2
    # The real labels are learnt: the canary's near-chance AUCs are the canary working.
    assert grid.completed["auc"].min() > 0.7

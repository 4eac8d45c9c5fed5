"""The grid engine gives the predictions of cross-validating each configuration alone: a checksum.

Runs the chosen configurations of the BUS-BRA grid on the same feature tables and outer folds
twice: as the engine before cells did (each configuration alone through
`cross_validate_patients`, one after the other) and through `run_grid` (cells sharing fits), then
prints each configuration's probability checksum (sum of out-of-fold probabilities), the largest
difference between the two, and the CPU seconds of each engine (this process and its workers).

Feature tables: parquet files of the store's radiomic and deep tables (``--tables DIR`` holding
``radiomic.parquet``, ``deep.parquet``) and a fold table (``folds.csv``, as `save_fold_table`
writes). Restrict the work with ``--folds`` (outer test folds kept; the others train only) and
``--classifiers``.

Run (from the repository root)::

    nice .venv/bin/python bench/grid_engine_checksum.py --tables ../scratch/speed --folds 1 \
        --classifiers logistic knn --jobs 2
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import pandas as pd
import psutil
from threadpoolctl import threadpool_limits

from dlradiomics.evaluation import CONFIG_COLUMNS, cross_validate_patients, run_grid
from dlradiomics.evaluation.splits import TRAIN_ONLY
from dlradiomics.models import CLASSIFIERS, FUSIONS, SOURCES, ModelConfiguration, build_estimator, build_model_table


def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process and its live and reaped children."""
    process = psutil.Process(os.getpid())
    total = sum(process.cpu_times()[:4])
    for child in process.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=Path, default=Path("../scratch/speed"))
    parser.add_argument("--folds", type=int, nargs="+", default=None, help="outer test folds to run (default all)")
    parser.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS))
    parser.add_argument("--sources", nargs="+", default=list(SOURCES))
    parser.add_argument("--fusions", nargs="+", default=list(FUSIONS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--new-only", action="store_true", help="time the new engine only (no old run to compare)")
    args = parser.parse_args()
    tables = {kind: pd.read_parquet(args.tables / f"{kind}.parquet") for kind in ("radiomic", "deep")}
    folds = pd.read_csv(args.tables / "folds.csv", dtype={"patient_id": str})
    if args.folds:
        folds.loc[~folds["fold"].isin(args.folds), "fold"] = TRAIN_ONLY
    options = dict(sources=args.sources, modality_sets=[("US",)], fusions=args.fusions, classifiers=args.classifiers,
                   n_boot=10)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu, wall = tree_cpu_seconds(), time.perf_counter()
        new = run_grid(tables, outer=folds, n_jobs=args.jobs, **options)
        new_cpu, new_wall = tree_cpu_seconds() - cpu, time.perf_counter() - wall
        if args.new_only:
            stats = new.run_stats
            print(f"new engine: {len(new.completed)} configurations x {new.oof.groupby(['repeat', 'fold']).ngroups} "
                  f"outer fold(s), {stats.cells} cells on {stats.workers} workers: {new_cpu:.1f} CPU-s "
                  f"({new_cpu / max(len(new.completed), 1):.1f} per configuration), {new_wall:.1f} s wall; "
                  f"checksum {new.oof['prob'].sum():.12f}; fits shared {stats.fit_hits}, computed {stats.fit_misses}")
            print(new.oof.groupby(list(CONFIG_COLUMNS))["prob"].sum().to_string())
            return
        old_frames, cpu, wall = [], tree_cpu_seconds(), time.perf_counter()
        # One BLAS thread, as in the grid's worker processes, so both engines spend CPU alike.
        limits = threadpool_limits(limits=1)
        for _, row in new.completed.iterrows():
            configuration = ModelConfiguration(row["source"], tuple(row["modalities"].split("+")), row["fusion"],
                                               row["classifier"])
            X, y, groups = build_model_table(tables, list(configuration.modalities), list(configuration.kinds),
                                             configuration.level)
            alone = cross_validate_patients(build_estimator(configuration, inner_cv=3, random_state=0), X, y, groups,
                                            outer=new.fold_table, inner_splits=3, unscored="drop", seed=0)
            old_frames.append(alone.assign(**configuration.key()))
        old_cpu, old_wall = tree_cpu_seconds() - cpu, time.perf_counter() - wall
        limits.restore_original_limits()

    keys = [*CONFIG_COLUMNS, "repeat", "fold", "patient_id"]
    old = pd.concat(old_frames, ignore_index=True)
    both = old.merge(new.oof, on=keys, suffixes=("_old", "_new"), how="outer", indicator=True)
    print(f"{len(new.completed)} configurations x {new.oof.groupby(['repeat', 'fold']).ngroups} outer fold(s); "
          f"rows only in one engine: {int((both['_merge'] != 'both').sum())}")
    sums = both.groupby(list(CONFIG_COLUMNS))[["prob_old", "prob_new"]].sum()
    sums["max_abs_diff"] = (both["prob_old"] - both["prob_new"]).abs().groupby(
        [both[column] for column in CONFIG_COLUMNS]).max()
    pd.set_option("display.width", 200)
    print(sums.to_string(float_format=lambda value: f"{value:.12g}"))
    print(f"checksum old {old['prob'].sum():.12f}  new {new.oof['prob'].sum():.12f}  "
          f"largest difference {sums['max_abs_diff'].max():.3g}")
    stats = new.run_stats
    print(f"old engine (each configuration alone, 1 process): {old_cpu:.1f} CPU-s, {old_wall:.1f} s wall")
    print(f"new engine ({stats.cells} cells on {stats.workers} workers): {new_cpu:.1f} CPU-s, {new_wall:.1f} s wall; "
          f"fits shared {stats.fit_hits}, computed {stats.fit_misses}, CPU-s not spent again {stats.fit_seconds_saved:.1f}")


if __name__ == "__main__":
    main()

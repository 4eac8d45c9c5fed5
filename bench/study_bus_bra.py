"""BUS-BRA study: radiomic, deep and DLR models in the publishers' 5 folds, against the radiologist.

Radiomic features (PyRadiomics 2D defaults) and EfficientNet-Lite0 ImageNet embeddings of all
1,875 ultrasound ROIs are read from (or computed into) the feature store; the experiment grid
(sources radiomic / deep / dlr x fusion x classifier, ultrasound only) is cross-validated in the
publishers' patient-level folds (``5-fold-cv.csv``, ``kFold``), every fitted step and the
operating threshold inside training folds. Printed: patient-level AUC with bootstrap 95% CI per
configuration, the best configuration by inner-CV AUC, the senior radiologist's BI-RADS on the same
patients (AUC of BI-RADS as a score, max per patient; sensitivity/specificity at BI-RADS >= 4),
the best model's specificity at the radiologist's sensitivity, a DeLong test of the two, and the
wall time of each stage.

Run (from the repository root; the grid takes a while on a CPU)::

    nice .venv/bin/python bench/study_bus_bra.py --data ../shared/data/bus-bra \
        --store scratch/bus-bra-store --out scratch/study-bus-bra --jobs 2

The default is the paper's 35-configuration grid (7 classifiers x radiomic, deep, DLR early,
ensemble and stacking); ``--canary`` adds the whole grid on permuted labels in the same cells.
Printed besides: the grid's CPU seconds (process tree) per configuration, its probability
checksum and what sharing fits saved.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from sklearn.metrics import recall_score, roc_curve

from dlradiomics.cohort import Cohort
from dlradiomics.cohort.loaders import bus_bra_manifest
from dlradiomics.evaluation import GridResult, run_grid
from dlradiomics.evaluation.canary import judge_grid_canary, run_grid_with_canary
from dlradiomics.evaluation.crossval import cross_validate_patients
from dlradiomics.evaluation.metrics import bootstrap_metrics, format_estimate
from dlradiomics.evaluation.splits import fold_table_from_column
from dlradiomics.evaluation.stats import delong_auc_ci, delong_test
from dlradiomics.features.radiomic import extract_radiomic_features
from dlradiomics.features.deep import compute_embeddings
from dlradiomics.io.atomic import write_csv_atomic
from dlradiomics.models import (
    CLASSIFIERS,
    CLINICAL_KIND,
    FUSIONS,
    KINDS_OF_SOURCE,
    SOURCES,
    ModelConfiguration,
    build_estimator,
    build_model_table,
)
from dlradiomics.study.progress import GridProgressDisplay
from dlradiomics.study.stage_timer import process_tree_cpu_seconds

BIRADS_POSITIVE_FROM = 4


def radiologist_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Per patient: the highest BI-RADS category of its images, and its label."""
    return table.groupby("patient_id").agg(birads=("birads", "max"), y_true=("label", "max"))


def specificity_at_sensitivity(y_true: np.ndarray, prob: np.ndarray, sensitivity: float) -> float:
    """Best specificity among thresholds reaching the sensitivity (a point read off the ROC curve)."""
    fpr, tpr, _ = roc_curve(y_true, prob, drop_intermediate=False)
    return float(1 - fpr[tpr >= sensitivity - 1e-12].min())


# What this bench's feature tables support: radiomic and deep features of the images. The clinical
# sources need BI-RADS as a clinical block (a ClinicalSpec), which bench/beat_radiologist.py builds.
IMAGING_SOURCES = [source for source in SOURCES if CLINICAL_KIND not in KINDS_OF_SOURCE[source]]


def build_parser() -> argparse.ArgumentParser:
    """The bench's command line; its default grid is the paper's (imaging sources only)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bus-bra"))
    parser.add_argument("--store", type=Path, default=Path("scratch/bus-bra-store"))
    parser.add_argument("--out", type=Path, default=Path("scratch/study-bus-bra"))
    parser.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS))
    parser.add_argument("--sources", nargs="+", default=list(IMAGING_SOURCES), choices=IMAGING_SOURCES,
                        help=f"feature sources (default: {' '.join(IMAGING_SOURCES)}, the paper's imaging sources; "
                             "this bench builds no clinical block, so the clinical sources are not offered: "
                             "bench/beat_radiologist.py models BI-RADS with the images)")
    parser.add_argument("--fusions", nargs="+", default=list(FUSIONS))
    parser.add_argument("--late-classifiers", nargs="+", default=None,
                        help="classifiers of the DLR ensemble and stacking cells (default: --classifiers, "
                             "the paper's 35-configuration grid)")
    parser.add_argument("--jobs", type=int, default=1, help="grid cells run in parallel (local worker processes)")
    parser.add_argument("--canary", action="store_true",
                        help="run the whole grid on permuted labels too, in the same cells, and judge it")
    parser.add_argument("--n-boot", type=int, default=1000)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stage_seconds: dict[str, float] = {}
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 200)

    started = time.perf_counter()
    cohort = Cohort.from_table(bus_bra_manifest(args.data), args.data, source=str(args.data))
    cohort.raise_for_problems()
    table = cohort.table
    stage_seconds["cohort"] = time.perf_counter() - started

    started = time.perf_counter()
    radiomic = extract_radiomic_features(cohort, args.store, n_jobs=1, progress=False, strict=True).features
    stage_seconds["radiomic features (store)"] = time.perf_counter() - started

    started = time.perf_counter()
    deep = compute_embeddings(cohort, "efficientnet_lite0", "imagenet", store_dir=args.store)
    stage_seconds["deep features (store)"] = time.perf_counter() - started
    feature_tables = {"radiomic": radiomic, "deep": deep}
    print(f"BUS-BRA: {len(table)} images of {table['patient_id'].nunique()} patients; "
          f"{radiomic.shape[0]} radiomic rows, {deep.shape[0]} deep rows")

    fold_table = fold_table_from_column(table, "fold5")
    write_csv_atomic(fold_table, args.out / "folds.csv")
    started = time.perf_counter()
    cpu_started = process_tree_cpu_seconds()
    late_classifiers = args.late_classifiers or args.classifiers
    canary = None
    with warnings.catch_warnings(), GridProgressDisplay("grid", Console(stderr=True)) as progress:
        warnings.simplefilter("ignore")
        common = dict(modality_sets=[("US",)], outer=fold_table, n_boot=args.n_boot, n_jobs=args.jobs,
                      progress=progress)
        if sorted(late_classifiers) == sorted(args.classifiers):
            if args.canary:
                grid, canary = run_grid_with_canary(feature_tables, sources=args.sources, fusions=args.fusions,
                                                    classifiers=args.classifiers, **common)
            else:
                grid = run_grid(feature_tables, sources=args.sources, fusions=args.fusions,
                                classifiers=args.classifiers, **common)
            grids = [grid]
        else:
            grids = [run_grid(feature_tables, sources=args.sources, fusions=["early"], classifiers=args.classifiers,
                              **common)]
            late_fusions = [fusion for fusion in args.fusions if fusion != "early"]
            if "dlr" in args.sources and late_fusions:
                grids.append(run_grid(feature_tables, sources=["dlr"], fusions=late_fusions,
                                      classifiers=late_classifiers, **common))
    grid = GridResult(
        results=pd.concat([part.results for part in grids], ignore_index=True),
        oof=pd.concat([part.oof for part in grids], ignore_index=True),
        fold_table=fold_table,
    )
    stage_seconds["grid" + (" and canary" if canary is not None else "")] = time.perf_counter() - started
    grid_cpu = process_tree_cpu_seconds() - cpu_started
    n_configurations = len(grid.completed) * (2 if canary is not None else 1)
    print(f"Grid: {len(grid.completed)} configurations completed"
          + (" (and as many on permuted labels)" if canary is not None else "")
          + f"; {grid_cpu:.0f} CPU-s in all, {grid_cpu / max(n_configurations, 1):.1f} CPU-s per configuration "
          f"(5 outer folds); probability checksum {grid.oof['prob'].sum():.9f}")
    for part in grids:
        stats = part.run_stats
        print(f"  {stats.cells} cells on {stats.workers} workers; fits shared {stats.fit_hits}, computed "
              f"{stats.fit_misses}; {stats.wall_s:.1f} s wall")
    if canary is not None:
        verdict = judge_grid_canary(canary, n_boot=args.n_boot)
        print("Canary (permuted labels):")
        print(verdict.table.to_string(index=False))
    write_csv_atomic(grid.results, args.out / "results.csv")
    write_csv_atomic(grid.oof, args.out / "oof_predictions.csv")

    completed = grid.completed.sort_values("auc", ascending=False)
    print("\nPatient-level out-of-fold results, publishers' 5 folds (threshold: Youden on inner CV):")
    for _, row in completed.iterrows():
        print(f"  {row['source']:8s} {row['fusion']:8s} {row['classifier']:11s} "
              f"AUC {format_estimate(row['auc'], row['auc_ci_low'], row['auc_ci_high'])}  "
              f"sens {row['sensitivity']:.3f} spec {row['specificity']:.3f}  inner AUC {row['inner_auc']:.3f}  "
              f"({row['wall_s']:.0f} s)")
    skipped = grid.results[grid.results["status"] != "ok"]
    print(f"  ({len(skipped)} configurations skipped: {sorted(set(skipped['note']))})")
    print("\nBest classifier per source and fusion (chosen by inner-CV AUC):")
    print(grid.best_per_setting().to_string(index=False))

    best = grid.best
    best_oof = grid.predictions_of(best).set_index("patient_id")
    radiologist = radiologist_scores(table).loc[best_oof.index]
    birads_auc, birads_low, birads_high = delong_auc_ci(radiologist["y_true"], radiologist["birads"])
    birads_positive = (radiologist["birads"] >= BIRADS_POSITIVE_FROM).astype(int)
    radiologist_sensitivity = recall_score(radiologist["y_true"], birads_positive, pos_label=1)
    radiologist_specificity = recall_score(radiologist["y_true"], birads_positive, pos_label=0)
    print(f"\nBest model by {grid.selection_rule}: {best['source']} | {best['fusion']} | {best['classifier']}")
    print(f"  AUC {format_estimate(best['auc'], best['auc_ci_low'], best['auc_ci_high'])} on "
          f"{int(best['n_patients'])} patients")
    print(f"Radiologist BI-RADS (max per patient) on the same patients: AUC "
          f"{format_estimate(birads_auc, birads_low, birads_high)} (DeLong CI); at BI-RADS >= {BIRADS_POSITIVE_FROM}: "
          f"sensitivity {radiologist_sensitivity:.3f}, specificity {radiologist_specificity:.3f}")
    comparison = delong_test(best_oof["y_true"], best_oof["prob"], radiologist["birads"])
    print(f"DeLong, best model vs BI-RADS: AUC difference {comparison.difference:+.3f} "
          f"(95% CI {comparison.ci_low:+.3f} to {comparison.ci_high:+.3f}), p = {comparison.p_value:.2g}")

    read_off = specificity_at_sensitivity(best_oof["y_true"], best_oof["prob"], radiologist_sensitivity)
    print(f"Best model's specificity at the radiologist's sensitivity {radiologist_sensitivity:.3f} "
          f"(read off its out-of-fold ROC curve): {read_off:.3f}")

    started = time.perf_counter()
    configuration = ModelConfiguration(best["source"], ("US",), best["fusion"], best["classifier"])
    X, y, groups = build_model_table(feature_tables, ["US"], list(configuration.kinds), configuration.level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = cross_validate_patients(build_estimator(configuration), X, y, groups, outer=fold_table,
                                         threshold=float(radiologist_sensitivity))
    frozen_metrics = bootstrap_metrics(frozen["y_true"], frozen["prob"], frozen["threshold"], n_boot=args.n_boot)
    stage_seconds["best model at the radiologist's sensitivity"] = time.perf_counter() - started
    print(f"Same model, threshold set on training folds for sensitivity {radiologist_sensitivity:.3f} and frozen: "
          f"test sensitivity {format_estimate(*frozen_metrics.loc['sensitivity'])}, "
          f"specificity {format_estimate(*frozen_metrics.loc['specificity'])}")
    write_csv_atomic(frozen, args.out / "best_model_at_radiologist_sensitivity.csv")

    print("\nWall time per stage:")
    for stage, seconds in stage_seconds.items():
        print(f"  {stage:45s} {seconds:8.1f} s")
    print(f"Tables written to {args.out}/")


if __name__ == "__main__":
    main()

"""BUS-BRA: the paper's (leaky) protocol against the honest nested protocol, on real and permuted labels.

For all 1,064 patients and for a 322-patient stratified subsample (the paper's cohort size), with
the real labels and with labels permuted between patients, this prints:

- the honest protocol's figure: nested selection ("run the grid, keep the best by inner-CV AUC",
  every fitted step inside training folds) over patient-grouped, stratified 5-fold CV, AUC with
  bootstrap 95% CI over every patient;
- the paper protocol's figure (`dlradiomics.evaluation.paper_protocol`): selection and PCA fitted
  on every patient, one 80/20 split by seed, ensemble weights and threshold set on the test set,
  the configuration with the best test AUC reported;
- the difference paper - honest on the patients both score (the paper protocol's test patients),
  with its paired bootstrap 95% CI.

On permuted labels any AUC above 0.5 is leakage: the honest figure must stay near 0.5.
Features: PyRadiomics 2D defaults and EfficientNet-Lite0 ImageNet embeddings of the 1,875 ROIs,
read from (or computed into) the feature store; ``--tables DIR`` reads ``radiomic.parquet`` and
``deep.parquet`` (image-level feature tables) instead. Ultrasound only (BUS-BRA has no other
modality); sources radiomic, deep and DLR.

Run (from the repository root; the nested grids take a while on a CPU)::

    nice .venv/bin/python bench/paper_protocol_bus_bra.py --data ../shared/data/bus-bra \
        --store scratch/paper-store --classifiers logistic --fusions early ensemble --jobs 2
    # the paper protocol alone over the paper's seven classifiers (no nested grid):
    nice .venv/bin/python bench/paper_protocol_bus_bra.py --protocols paper \
        --classifiers svm knn rf extra_trees xgboost lightgbm logistic
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from dlradiomics.cohort import Cohort
from dlradiomics.cohort.loaders import bus_bra_manifest
from dlradiomics.evaluation import permute_table_labels, run_grid, summarise_predictions
from dlradiomics.evaluation.metrics import format_estimate
from dlradiomics.evaluation.paper_protocol import compare_protocols, run_paper_protocol
from dlradiomics.evaluation.splits import patient_labels_of
from dlradiomics.models import FUSIONS, SOURCES

PAPER_COHORT_SIZE = 322


def load_tables(args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    """The image-level radiomic and deep feature tables of BUS-BRA."""
    if args.tables is not None:
        return {kind: pd.read_parquet(args.tables / f"{kind}.parquet") for kind in ("radiomic", "deep")}
    # Imported here: the deep features pull in torch, not needed when --tables is given.
    from dlradiomics.features.deep import compute_embeddings
    from dlradiomics.features.radiomic import extract_radiomic_features

    cohort = Cohort.from_table(bus_bra_manifest(args.data), args.data, source=str(args.data))
    cohort.raise_for_problems()
    radiomic = extract_radiomic_features(cohort, args.store, n_jobs=1, progress=False, strict=True).features
    deep = compute_embeddings(cohort, "efficientnet_lite0", "imagenet", store_dir=args.store)
    return {"radiomic": radiomic, "deep": deep}


def subsample(tables: dict[str, pd.DataFrame], n_patients: int, seed: int) -> dict[str, pd.DataFrame]:
    """The tables of a stratified random subset of patients."""
    labels = patient_labels_of(tables)
    kept, _ = train_test_split(labels.index.to_numpy(), train_size=n_patients, stratify=labels.to_numpy(),
                               random_state=seed)
    kept = set(kept)
    return {kind: table[table["patient_id"].astype(str).isin(kept)].reset_index(drop=True)
            for kind, table in tables.items()}


def both_protocols(tables: dict[str, pd.DataFrame], args: argparse.Namespace, *, permuted: bool) -> dict:
    """Run the honest nested grid and the paper protocol on the same tables (labels permuted alike)."""
    grid_kwargs = dict(sources=args.sources, modality_sets=[("US",)], fusions=args.fusions,
                       classifiers=args.classifiers, n_boot=args.n_boot, seed=args.seed)
    outcome: dict = {"nested": None, "comparison": None}
    if "nested" in args.protocols:
        honest_tables = permute_table_labels(tables, seed=args.seed) if permuted else tables
        started = time.perf_counter()
        grid = run_grid(honest_tables, n_jobs=args.jobs, **grid_kwargs)
        nested_predictions = grid.nested_selection_predictions()
        outcome["nested"] = summarise_predictions(nested_predictions, n_boot=args.n_boot, seed=args.seed)
        outcome["honest_s"] = time.perf_counter() - started
    started = time.perf_counter()
    outcome["paper"] = run_paper_protocol(tables, permute_labels=permuted, **grid_kwargs)
    outcome["paper_s"] = time.perf_counter() - started
    if outcome["nested"] is not None:
        outcome["comparison"] = compare_protocols(outcome["paper"], nested_predictions, n_boot=args.n_boot,
                                                  seed=args.seed)
    return outcome


def report(cohort: str, labels: str, outcome: dict) -> None:
    """Print one scenario's figures."""
    nested, paper, comparison = outcome["nested"], outcome["paper"].reported, outcome["comparison"]
    print(f"\n== {cohort}, {labels} labels")
    if nested is not None:
        print(f"  honest (nested selection, 5-fold CV, {int(nested['n_patients'])} patients): AUC "
              f"{format_estimate(nested['auc'], nested['auc_ci_low'], nested['auc_ci_high'])}   "
              f"[{outcome['honest_s']:.0f} s under load]")
    completed = outcome["paper"].completed
    print(f"  paper protocol (reported: {paper['source']} | {paper['fusion']} | {paper['classifier']}, "
          f"{int(paper['n_test'])} test patients): AUC {format_estimate(paper['auc'], paper['auc_ci_low'], paper['auc_ci_high'])}"
          f", accuracy {paper['accuracy']:.3f} at the test-set threshold; median over its {len(completed)} "
          f"configurations {completed['auc'].median():.3f}   [{outcome['paper_s']:.0f} s under load]")
    if comparison is not None:
        print(f"  difference paper - honest on the shared patients: {comparison['difference']:+.3f} "
              f"(95% CI {comparison['ci_low']:+.3f} to {comparison['ci_high']:+.3f}; honest AUC there "
              f"{comparison['nested_auc_shared']:.3f}); {comparison['what']}")
    table = completed.sort_values("auc", ascending=False)
    print("  paper protocol, every configuration's test AUC: " + ", ".join(
        f"{row.source}|{row.fusion}|{row.classifier} {row.auc:.3f}" for row in table.itertuples()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bus-bra"))
    parser.add_argument("--store", type=Path, default=Path("scratch/paper-store"))
    parser.add_argument("--tables", type=Path, default=None,
                        help="folder with radiomic.parquet and deep.parquet (skips the feature store)")
    parser.add_argument("--classifiers", nargs="+", default=["logistic", "svm", "lightgbm"])
    parser.add_argument("--sources", nargs="+", default=list(SOURCES))
    parser.add_argument("--fusions", nargs="+", default=list(FUSIONS))
    parser.add_argument("--cohorts", nargs="+", default=["all", "322"], help="'all' and/or a patient count")
    parser.add_argument("--labels", nargs="+", default=["permuted", "real"])
    parser.add_argument("--protocols", nargs="+", default=["nested", "paper"], choices=["nested", "paper"],
                        help="'paper' alone skips the (costly) nested grid, e.g. to run the paper protocol over "
                             "all seven classifiers")
    parser.add_argument("--jobs", type=int, default=1, help="configurations of the nested grid fitted in parallel")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    tables = load_tables(args)
    n_all = patient_labels_of(tables).size
    print(f"BUS-BRA: {n_all} patients, {len(tables['radiomic'])} images; features in "
          f"{time.perf_counter() - started:.0f} s; classifiers {args.classifiers}, sources {args.sources}, "
          f"fusions {args.fusions}; seed {args.seed}")
    for cohort in args.cohorts:
        chosen = tables if cohort == "all" else subsample(tables, int(cohort), args.seed)
        name = f"all {n_all} patients" if cohort == "all" else f"{cohort}-patient stratified subsample"
        for labels in args.labels:
            report(name, labels, both_protocols(chosen, args, permuted=labels == "permuted"))


if __name__ == "__main__":
    main()

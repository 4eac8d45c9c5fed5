"""Beat the radiologist at the radiologist's own operating point, on BUS-BRA (issue 11).

The radiologist: the BUS-BRA senior radiologist's BI-RADS category (2-5) per patient (a patient's
most suspicious lesion, ``max``: one of the 1,064 patients has two lesions read 4 and 5), as a
score (AUC) and as the clinical rule BI-RADS >= 4 = biopsy (sensitivity 0.936, specificity 0.777).

The models, each cross-validated with everything fitted inside the training folds (selection,
imputation, one-hot encoding of BI-RADS, the penalty, and the threshold, frozen on the training
patients' inner out-of-fold predictions at sensitivity 0.936 before any test patient is scored):

- ``imaging alone``: PyRadiomics features of the lesion, a 12-pixel peritumoral ring, LoG (sigma
  1, 2, 4 px) and coif1 wavelet images (846 features; the feature families of issue 9, fixed in
  advance), standardised, L1 logistic regression with C chosen by patient-grouped inner CV.
- ``imaging + BI-RADS``: the same with BI-RADS as a categorical clinical variable (one-hot inside
  the training folds), one early-fused model.

Both are fixed in advance (before this bench looked at its folds; note that the feature families
were chosen by the features stream on the same publishers' folds). Each is scored in the
publishers' 5 folds, their 10 folds, and leave-one-device-out (four devices; U-Systems has 14
patients), beside the radiologist on the same patients: AUC (DeLong CI), sensitivity and
specificity at the frozen threshold (bootstrap CI), McNemar (mid-p and exact) on the benign
patients (specificity) and on the malignant ones (sensitivity), DeLong against BI-RADS as a score.

``--part ingredients`` then measures ingredients one at a time on the publishers' 5 folds (each
row says what it changes against the row it builds on), and the honest estimate of "try them all,
keep the best": the recipe each outer fold would pick by inner-CV specificity at sensitivity 0.936
(ties: inner AUC), scored on that fold's test patients (nested; test folds never consulted).

Run (from the repository root; features are read from the store, or extracted into it)::

    nice -n 10 .venv/bin/python bench/beat_radiologist.py --jobs 2 --out ../scratch/radiologist/main
    nice -n 10 .venv/bin/python bench/beat_radiologist.py --part ingredients --jobs 2 \
        --reuse ../scratch/radiologist/main/oof_predictions_main.csv --out ../scratch/radiologist/ingredients

(``--reuse``: the two ingredient rows that equal the main recipes are read from the main run.)

Timings printed are wall times of this machine (label them "under load" when it is shared).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlradiomics.cohort import Cohort
from dlradiomics.cohort.loaders import bus_bra_manifest
from dlradiomics.cohort.patient_values import patient_values
from dlradiomics.evaluation import (
    GridResult,
    compare_with_reference,
    cross_validate_patients,
    fold_table_from_column,
    fold_table_from_groups,
    per_site_metrics,
    summarise_predictions,
)
from dlradiomics.evaluation.stats import delong_auc_ci, delong_test
from dlradiomics.features.radiomic import extract_radiomic_features, load_radiomics_params, radiomic_feature_columns
from dlradiomics.models import (
    DEFAULT_SELECTION,
    ClinicalEncodingStep,
    ModelConfiguration,
    build_estimator,
    build_model_table,
    make_classifier,
    make_pipeline,
)
from dlradiomics.schema import META_COLUMNS
from dlradiomics.study.clinical import ClinicalSpec, add_clinical_table
from dlradiomics.study.settings import ClinicalSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"peritumoral": {"width_px": 12}, "log": {"sigmas": [1.0, 2.0, 4.0]}, "wavelet": {"name": "coif1"}}
ALL_FAMILIES = ("original_", "peri_", "log-sigma-", "wavelet-")
SENSITIVITY = 0.936
RADIOLOGIST = "radiologist (BI-RADS >= 4)"
BIRADS_CATEGORICAL = ClinicalSettings(columns=["birads"], categorical=["birads"], per_patient={"birads": "max"})
BIRADS_ORDINAL = ClinicalSettings(columns=["birads"], per_patient={"birads": "max"})


@dataclass(frozen=True)
class Recipe:
    """One model: which radiomic families, how BI-RADS enters, and the estimator.

    Args:
        name: the row's name.
        families: prefixes of the radiomic feature columns used (empty: none).
        birads: None (imaging alone), "categorical" or "ordinal".
        estimator: builds the unfitted estimator from the clinical encoding step (None without BI-RADS).
        change: what this row changes, against which row.
    """

    name: str
    families: tuple[str, ...]
    birads: str | None
    estimator: Callable[[ClinicalEncodingStep | None], object]
    change: str = ""


def l1_logistic(encoding: ClinicalEncodingStep | None):
    """Standardise, L1 logistic regression with C in (0.01, 0.1, 1, 10) by patient-grouped inner CV."""
    steps = (encoding,) if encoding is not None else None
    return make_pipeline(make_classifier("logistic", search=True, l1_ratio=1.0, solver="liblinear"), steps)


def paper_chain(classifier: str) -> Callable[[ClinicalEncodingStep | None], object]:
    """The study's default: Mann-Whitney -> Spearman -> LASSO selection, then a registered classifier."""
    def build(encoding: ClinicalEncodingStep | None):
        source = "radiomic+clinical" if encoding is not None else "radiomic"
        selections = {"radiomic+clinical": (encoding, *DEFAULT_SELECTION)} if encoding is not None else None
        return build_estimator(ModelConfiguration(source, ("US",), "early" if encoding else "single", classifier),
                               selections=selections)
    return build


def stacking(classifier: str) -> Callable[[ClinicalEncodingStep | None], object]:
    """Late fusion: one model per block (radiomics, BI-RADS), a logistic meta-learner on inner out-of-fold probabilities."""
    def build(encoding: ClinicalEncodingStep | None):
        return build_estimator(ModelConfiguration("radiomic+clinical", ("US",), "stacking", classifier),
                               selections={"radiomic+clinical": (encoding, *DEFAULT_SELECTION)})
    return build


MAIN = {
    "imaging alone": Recipe("imaging alone", ALL_FAMILIES, None, l1_logistic),
    "imaging + BI-RADS": Recipe("imaging + BI-RADS", ALL_FAMILIES, "categorical", l1_logistic),
}
INGREDIENTS = [
    Recipe("lesion, paper chain + logistic", ("original_",), None, paper_chain("logistic"),
           "the study's default model (Mann-Whitney, Spearman, LASSO; logistic C=1) on the lesion's 102 features"),
    Recipe("lesion, L1 logistic", ("original_",), None, l1_logistic, "L1 logistic, C by inner CV, no filter"),
    Recipe("+ ring", ("original_", "peri_"), None, l1_logistic, "adds the 12-pixel peritumoral ring"),
    Recipe("+ ring + wavelet", ("original_", "peri_", "wavelet-"), None, l1_logistic, "adds coif1 wavelets"),
    Recipe("+ ring + wavelet + LoG", ALL_FAMILIES, None, l1_logistic, "adds LoG (all 846 features)"),
    Recipe("lesion + BI-RADS", ("original_",), "categorical", l1_logistic,
           "BI-RADS (one-hot) with the lesion's features"),
    Recipe("all families + BI-RADS", ALL_FAMILIES, "categorical", l1_logistic, "BI-RADS with all families"),
    Recipe("all families + BI-RADS ordinal", ALL_FAMILIES, "ordinal", l1_logistic,
           "BI-RADS as one number (2-5) instead of one-hot"),
    Recipe("all families + BI-RADS, paper chain", ALL_FAMILIES, "categorical", paper_chain("logistic"),
           "the paper's selection chain and logistic C=1 instead of L1"),
    Recipe("all families + BI-RADS, stacking", ALL_FAMILIES, "categorical", stacking("logistic"),
           "late fusion: a radiomic model and a BI-RADS model, stacked"),
    Recipe("all families + BI-RADS, SVM", ALL_FAMILIES, "categorical", paper_chain("svm"),
           "RBF SVM after the paper's chain"),
    Recipe("all families + BI-RADS, LightGBM", ALL_FAMILIES, "categorical", paper_chain("lightgbm"),
           "LightGBM after the paper's chain"),
]


def load_cohort(data: Path, n_patients: int | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """BUS-BRA's manifest rows (all, or a label-stratified subset) and the radiologist's BI-RADS per patient.

    A patient's BI-RADS is that of the patient's most suspicious lesion (max).
    """
    cohort = Cohort.from_table(bus_bra_manifest(data), data, source=str(data))
    cohort.raise_for_problems()
    table = cohort.table
    if n_patients is not None:
        labels = table.groupby("patient_id")["label"].first()
        chosen = labels.groupby(labels).sample(frac=n_patients / len(labels), random_state=0).index
        table = table[table["patient_id"].isin(chosen)].reset_index(drop=True)
    birads = pd.to_numeric(patient_values(table, "birads", rule="max"))
    return table, birads


def model_table(recipe: Recipe, radiomic: pd.DataFrame, table: pd.DataFrame):
    """The recipe's modelling table (image rows) and its clinical encoding step."""
    columns = [column for column in radiomic_feature_columns(radiomic) if column.startswith(recipe.families)]
    tables = {"radiomic": radiomic[[*META_COLUMNS, *columns]]}
    kinds = ["radiomic"]
    encoding = None
    if recipe.birads is not None:
        spec = ClinicalSpec.learn(BIRADS_CATEGORICAL if recipe.birads == "categorical" else BIRADS_ORDINAL, table)
        tables = add_clinical_table(tables, table, spec)
        kinds.append("clinical")
        encoding = spec.encoding_step()
    X, y, groups = build_model_table(tables, ["US"], kinds, level="image")
    return X, y, groups, encoding


def cross_validate(recipe: Recipe, radiomic: pd.DataFrame, table: pd.DataFrame, folds: pd.DataFrame,
                   n_jobs: int) -> pd.DataFrame:
    """Out-of-fold patient predictions of one recipe (threshold frozen on training folds at SENSITIVITY)."""
    X, y, groups, encoding = model_table(recipe, radiomic, table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and selector fallbacks, per fit
        return cross_validate_patients(recipe.estimator(encoding), X, y, groups, outer=folds, threshold=SENSITIVITY,
                                       inner_splits=3, seed=0, n_jobs=n_jobs)


def cell(estimate: float, low: float, high: float) -> str:
    return f"{estimate:.3f} ({low:.3f}-{high:.3f})"


def p_text(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.2g}"


def describe(name: str, predictions: pd.DataFrame, birads: pd.Series, n_boot: int) -> dict:
    """One row: AUC, sensitivity, specificity at the frozen thresholds, McNemar and DeLong against the radiologist."""
    comparison = compare_with_reference(predictions, birads, positive_at=4, reference=RADIOLOGIST, n_boot=n_boot)
    model = comparison.model
    auc = delong_auc_ci(predictions["y_true"], predictions["prob"])
    return {
        "model": name, "patients": comparison.n_patients, "AUC (DeLong CI)": cell(*auc),
        "sensitivity": cell(*model.loc["sensitivity"]), "specificity": cell(*model.loc["specificity"]),
        "benign spared / lost vs radiologist": f"{comparison.specificity_test.first_only} / "
                                               f"{comparison.specificity_test.second_only}",
        "McNemar spec (mid-p; exact)": f"{p_text(comparison.specificity_test.p_mid)}; "
                                       f"{p_text(comparison.specificity_test.p_exact)}",
        "McNemar sens (mid-p)": p_text(comparison.sensitivity_test.p_mid),
        "DeLong vs BI-RADS": f"{comparison.auc_test.difference:+.3f}, p {p_text(comparison.auc_test.p_value)}",
    }, comparison


def radiologist_row(predictions: pd.DataFrame, birads: pd.Series, n_boot: int) -> dict:
    comparison = compare_with_reference(predictions, birads, positive_at=4, reference=RADIOLOGIST, n_boot=n_boot)
    scores = birads.rename(index=str).reindex(predictions["patient_id"].astype(str)).to_numpy(dtype=float)
    auc = delong_auc_ci(predictions["y_true"], scores)
    reference = comparison.reference_metrics
    return {"model": RADIOLOGIST, "patients": comparison.n_patients, "AUC (DeLong CI)": cell(*auc),
            "sensitivity": cell(*reference.loc["sensitivity"]), "specificity": cell(*reference.loc["specificity"])}


def fold_schemes(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"publishers' 5 folds": fold_table_from_column(table, "fold5"),
            "publishers' 10 folds": fold_table_from_column(table, "fold10"),
            "leave one device out": fold_table_from_groups(table, "device")}


def print_table(rows: list[dict]) -> None:
    print(pd.DataFrame(rows).to_string(index=False), flush=True)


def run_main(radiomic, table, birads, schemes, args) -> dict[str, pd.DataFrame]:
    predictions = {}
    for scheme in args.schemes:
        folds = schemes[scheme]
        rows = []
        for recipe in MAIN.values():
            started = time.perf_counter()
            oof = cross_validate(recipe, radiomic, table, folds, args.jobs)
            predictions[f"{scheme} | {recipe.name}"] = oof
            row, _ = describe(recipe.name, oof, birads, args.bootstrap)
            rows.append({**row, "wall s": round(time.perf_counter() - started)})
            if not rows[:-1]:
                rows.insert(0, radiologist_row(oof, birads, args.bootstrap))
        first, second = (predictions[f"{scheme} | {name}"].set_index("patient_id") for name in MAIN)
        paired = delong_test(first["y_true"], second.loc[first.index, "prob"], first["prob"])
        print(f"\n== {scheme}: threshold frozen on training folds for sensitivity {SENSITIVITY}")
        print_table(rows)
        print(f"imaging + BI-RADS minus imaging alone: AUC {paired.difference:+.3f} "
              f"({paired.ci_low:+.3f} to {paired.ci_high:+.3f}), DeLong p {p_text(paired.p_value)}")
        if scheme == "leave one device out":
            for recipe in MAIN.values():
                sites = per_site_metrics(predictions[f"{scheme} | {recipe.name}"], folds)
                print(f"-- {recipe.name}, each held-out device:")
                print(sites[["group", "patients", "benign", "malignant", "auc", "sensitivity", "specificity",
                             "note"]].round(3).to_string(index=False))
    return predictions


def reused_predictions(recipe: Recipe, reuse: Path | None) -> pd.DataFrame | None:
    """A main recipe's publishers' 5-fold predictions from an earlier ``--part main --out`` run, if the recipe is one.

    The same recipe on the same folds with the same seeds: reading it back saves refitting 846 features.
    """
    same = [main for main in MAIN.values() if (main.families, main.birads, main.estimator)
            == (recipe.families, recipe.birads, recipe.estimator)]
    if reuse is None or not same or not reuse.exists():
        return None
    saved = pd.read_csv(reuse, index_col=[0, 1], dtype={"patient_id": str})
    key = f"publishers' 5 folds | {same[0].name}"
    if key not in saved.index.get_level_values(0):
        return None
    print(f"[{recipe.name}: out-of-fold predictions of '{key}' read from {reuse}]", flush=True)
    return saved.loc[key].reset_index(drop=True)


def run_ingredients(radiomic, table, birads, schemes, args) -> dict[str, pd.DataFrame]:
    folds = schemes["publishers' 5 folds"]
    predictions, rows = {}, []
    chosen = [recipe for recipe in INGREDIENTS if not args.ingredients or recipe.name in args.ingredients]
    # Rows read back from a main run come last (that run may still be writing them); the table keeps INGREDIENTS' order.
    chosen.sort(key=lambda recipe: any(recipe.estimator is main.estimator and recipe.families == main.families
                                       and recipe.birads == main.birads for main in MAIN.values()) and args.reuse is not None)
    for recipe in chosen:
        started = time.perf_counter()
        oof = reused_predictions(recipe, args.reuse)
        if oof is None:
            oof = cross_validate(recipe, radiomic, table, folds, args.jobs)
        predictions[recipe.name] = oof
        row, _ = describe(recipe.name, oof, birads, args.bootstrap)
        inner = oof.groupby("fold")[["inner_auc", "inner_specificity"]].first().mean()
        rows.append({**row, "inner AUC": round(inner["inner_auc"], 3),
                     "inner spec": round(inner["inner_specificity"], 3), "changes": recipe.change,
                     "wall s": round(time.perf_counter() - started)})
        print(f"[{recipe.name}: {rows[-1]['wall s']} s]", flush=True)
        print_table(rows[-1:])  # each row as it comes: a long run stopped early keeps what it measured
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            oof.to_csv(args.out / f"oof_ingredient_{len(rows):02d}.csv", index=False)
    order = {recipe.name: rank for rank, recipe in enumerate(INGREDIENTS)}
    rows.sort(key=lambda row: order[row["model"]])
    predictions = dict(sorted(predictions.items(), key=lambda item: order[item[0]]))
    print(f"\n== Ingredients on the publishers' 5 folds (threshold frozen at sensitivity {SENSITIVITY})")
    print_table([radiologist_row(next(iter(predictions.values())), birads, args.bootstrap), *rows])
    # "Try every recipe, keep the best by inner CV": each fold's pick, scored on its own test patients.
    oof = pd.concat([frame.assign(source=name, modalities="US", fusion="-", classifier="-")
                     for name, frame in predictions.items()], ignore_index=True)
    results = pd.DataFrame([{"source": name, "modalities": "US", "fusion": "-", "classifier": "-", "status": "ok"}
                            for name in predictions])
    for rule in ("specificity_at_sensitivity", "auc"):
        grid = GridResult(results=results, oof=oof, fold_table=folds, choose_by=rule)
        nested = grid.nested_selection_predictions()
        picks = nested.groupby("fold")["source"].first().to_dict()
        row, _ = describe(f"nested choice by inner {rule}", nested, birads, args.bootstrap)
        print(f"\nNested choice among the recipes by inner {rule} (picks per fold: {picks}):")
        print_table([row])
        predictions[f"nested choice by inner {rule}"] = nested
    return predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "bus-bra")
    parser.add_argument("--store", type=Path, default=REPO_ROOT.parent / "scratch" / "features" / "store")
    parser.add_argument("--part", choices=("main", "ingredients", "all"), default="main")
    parser.add_argument("--schemes", nargs="+", default=["publishers' 5 folds", "publishers' 10 folds",
                                                         "leave one device out"])
    parser.add_argument("--ingredients", nargs="*", default=None, help="names of ingredient rows to run (default all)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=None, help="a label-stratified subset (smoke tests only)")
    parser.add_argument("--jobs", type=int, default=1, help="outer folds fitted in parallel")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="oof_predictions_main.csv of an earlier run: ingredient rows equal to a main recipe are read")
    parser.add_argument("--out", type=Path, default=None, help="folder for the out-of-fold predictions")
    args = parser.parse_args()
    # Parallel folds run in fresh worker processes, where the per-fit catch_warnings does not reach.
    os.environ.setdefault("PYTHONWARNINGS", "ignore")

    started = time.perf_counter()
    table, birads = load_cohort(args.data, args.patients)
    params = load_radiomics_params(overrides={"dlradiomics": FAMILIES})
    result = extract_radiomic_features(table, args.store, params=params, n_jobs=2, progress=False, strict=True)
    radiomic = result.features
    print(f"BUS-BRA: {len(table)} images of {table['patient_id'].nunique()} patients; {len(radiomic_feature_columns(radiomic))} "
          f"radiomic features ({result.n_cached} images from the store, {result.n_computed} computed) in "
          f"{time.perf_counter() - started:.0f} s")
    labels = table.groupby("patient_id")["label"].first()
    called = birads.reindex(labels.index) >= 4
    print(f"Radiologist on all patients: BI-RADS >= 4 sensitivity {called[labels == 1].mean():.3f}, specificity "
          f"{(~called[labels == 0]).mean():.3f}")
    schemes = fold_schemes(table)
    predictions = {}
    if args.part in ("main", "all"):
        predictions.update(run_main(radiomic, table, birads, schemes, args))
    if args.part in ("ingredients", "all"):
        predictions.update(run_ingredients(radiomic, table, birads, schemes, args))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        pd.concat(predictions, names=["model"]).to_csv(args.out / f"oof_predictions_{args.part}.csv")
    print(f"\nTotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

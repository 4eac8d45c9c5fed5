"""What the report says about which configurations could be chosen: coverage of the study's patients.

Self-contained pieces (a results table with its eligibility column, a sentence) that a report
section places where it wants them.
"""

from __future__ import annotations

import pandas as pd

from dlradiomics.evaluation import CONFIG_COLUMNS, GridResult, summarise_predictions


def results_with_eligibility(grid: GridResult, columns: list[str]) -> pd.DataFrame:
    """The results table with a column ``eligibility`` saying whether each configuration could be chosen.

    Args:
        grid: the experiment grid.
        columns: result columns to show; ``eligibility`` is inserted after ``status``.

    Returns:
        One row per configuration (skipped ones get an empty ``eligibility``; comparison-only rows,
        e.g. CNN baselines, say so: they are never chosen).
    """
    results = grid.results.reindex(columns=columns)
    eligibility = grid.eligibility()[[*CONFIG_COLUMNS, "eligibility"]] if not grid.candidates.empty else None
    if eligibility is None:
        results = results.assign(eligibility="")
    else:
        results = results.merge(eligibility, on=list(CONFIG_COLUMNS), how="left").fillna({"eligibility": ""})
    if "comparison_only" in grid.results.columns:
        comparison = grid.results["comparison_only"].astype("boolean").fillna(False).astype(bool).to_numpy()
        results.loc[comparison & (grid.results["status"] == "ok").to_numpy(), "eligibility"] = \
            "comparison only (never chosen)"
    ordered = [column for column in columns if column in results.columns]
    at = ordered.index("status") + 1 if "status" in ordered else len(ordered)
    return results[[*ordered[:at], "eligibility", *ordered[at:]]]


def eligibility_sentence(grid: GridResult) -> str:
    """One sentence: the coverage rule, and which configurations it left out and why.

    Args:
        grid: the experiment grid.

    Returns:
        The sentence (empty when no candidate configuration completed).
    """
    if grid.candidates.empty:
        return ""
    eligibility = grid.eligibility()
    n_study = len(grid.study_patients)
    partial = eligibility[eligibility["scored_patients"] < n_study]
    if partial.empty:
        return f"Every configuration that ran scores all {n_study} patients the folds test, so each could be chosen."
    listed = "; ".join(
        f"{row.source} | {row.modalities} | {row.fusion} | {row.classifier} ({row.scored_patients})"
        for row in partial.head(8).itertuples())
    more = f"; and {len(partial) - 8} more" if len(partial) > 8 else ""
    why = ("early fusion scores only patients having every modality of its set, a single-modality model only "
           "patients imaged in it")
    if grid.require_full_coverage:
        return (f"Only configurations that score every one of the {n_study} patients could be chosen; "
                f"{len(partial)} could not ({why}), with the patients each scores: {listed}{more}. Setting "
                "choice.require_full_coverage to false lets them compete.")
    return (f"Coverage was not required (choice.require_full_coverage: false): {len(partial)} "
            f"configuration(s) that score only part of the {n_study} patients competed ({why}): {listed}{more}. "
            "A model chosen among them cannot score the other patients.")


def nested_selection_sentence(grid: GridResult, *, n_boot: int, seed: int) -> str:
    """The honest estimate of "run the grid, keep the best" in one sentence, with the patients it is over.

    Args:
        grid: the experiment grid.
        n_boot: bootstrap replicates of its CI.
        seed: bootstrap seed.

    Returns:
        The sentence (saying why when it cannot be computed).
    """
    try:
        predictions = grid.nested_selection_predictions()
        nested = summarise_predictions(predictions, n_boot=n_boot, seed=seed)
    except ValueError as error:
        return f"The nested-selection estimate could not be computed: {error}."
    n_patients, n_study = int(nested["n_patients"]), len(grid.study_patients)
    over = (f"over all {n_study} patients" if n_patients == n_study else
            f"over the {n_patients} of {n_study} patients that every competing configuration scores")
    return ("Choosing the configuration inside each outer fold by inner AUC (the whole procedure, selection "
            f"included) gives AUC {nested['auc']:.3f} (95% CI {nested['auc_ci_low']:.3f}-{nested['auc_ci_high']:.3f}) "
            f"{over}: the honest estimate for 'run the grid, keep the best'.")

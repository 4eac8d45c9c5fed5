"""What the report says about the paper's (leaky) protocol run beside the nested one.

A self-contained section (`paper_protocol_section`) that the report places where it wants: both
protocols' figures, their difference with its CI, and both on permuted labels, so the paper
protocol's optimism is measured on the study's own data (docs/protocols.md).
"""

from __future__ import annotations

import pandas as pd

from dlradiomics.evaluation import CONFIG_COLUMNS, GridResult, format_estimate, summarise_predictions
from dlradiomics.evaluation.paper_protocol import PaperProtocolResult, compare_protocols
from dlradiomics.report.html import ReportSection, ReportTable

HEADING = "Paper protocol (leaky, for comparison)"
LEAKY_STEPS = ("feature selection (Mann-Whitney, Spearman, LASSO) and PCA fitted on every patient before one "
               "stratified 80/20 split, ensemble weights and the threshold set on the test patients, and the "
               "configuration with the best test AUC reported")


def _label(row: pd.Series) -> str:
    return " | ".join(str(row[column]) for column in CONFIG_COLUMNS)


def _nested(grid: GridResult | None, n_boot: int, seed: int) -> tuple[pd.DataFrame | None, pd.Series | None, str]:
    """The nested estimate's predictions and summary, or why there is none."""
    if grid is None:
        return None, None, "not run"
    try:
        predictions = grid.nested_selection_predictions()
    except ValueError as error:
        return None, None, str(error)
    return predictions, summarise_predictions(predictions, n_boot=n_boot, seed=seed), ""


def protocol_rows(paper: PaperProtocolResult, grid: GridResult | None, labels: str, *, n_boot: int,
                  seed: int) -> tuple[list[dict], str]:
    """Table rows (nested, paper, difference) of one label set, and a sentence about them."""
    rows = []
    predictions, nested, why = _nested(grid, n_boot, seed)
    if nested is not None:
        rows.append({"labels": labels, "protocol": "nested (honest)", "what": "nested selection over every fold",
                     "patients": int(nested["n_patients"]), "AUC": nested["auc"], "95% CI low": nested["auc_ci_low"],
                     "95% CI high": nested["auc_ci_high"]})
    if paper.completed.empty:
        return rows, f"On {labels} labels the paper protocol ran no configuration."
    reported = paper.reported
    rows.append({"labels": labels, "protocol": "paper (leaky)", "what": f"best test AUC: {_label(reported)}",
                 "patients": int(reported["n_test"]), "AUC": reported["auc"], "95% CI low": reported["auc_ci_low"],
                 "95% CI high": reported["auc_ci_high"]})
    paper_words = (f"the paper protocol reports AUC {format_estimate(reported['auc'], reported['auc_ci_low'], reported['auc_ci_high'])} "
                   f"on its {int(reported['n_test'])} test patients ({_label(reported)}, accuracy "
                   f"{reported['accuracy']:.3f} at the threshold set on them)")
    if nested is None:
        return rows, f"On {labels} labels {paper_words}; the nested estimate is not available ({why})."
    nested_words = (f"the nested protocol {format_estimate(nested['auc'], nested['auc_ci_low'], nested['auc_ci_high'])} "
                    f"on {int(nested['n_patients'])} patients")
    try:
        comparison = compare_protocols(paper, predictions, n_boot=n_boot, seed=seed)
    except ValueError as error:
        return rows, f"On {labels} labels {paper_words}, {nested_words}; no paired difference ({error})."
    rows.append({"labels": labels, "protocol": "difference (paper - nested)", "what": comparison["what"],
                 "patients": int(comparison["n_shared"]), "AUC": comparison["difference"],
                 "95% CI low": comparison["ci_low"], "95% CI high": comparison["ci_high"]})
    return rows, (f"On {labels} labels {paper_words}; {nested_words}. On the {int(comparison['n_shared'])} patients "
                  f"both score the difference is {comparison['difference']:+.3f} (95% CI {comparison['ci_low']:+.3f} "
                  f"to {comparison['ci_high']:+.3f}; {comparison['what']}).")


def paper_protocol_section(real: PaperProtocolResult, permuted: PaperProtocolResult, grid: GridResult,
                           canary: GridResult | None, *, n_boot: int, seed: int) -> ReportSection:
    """The paper protocol beside the nested one, on real and on permuted labels.

    Args:
        real: the paper protocol on the real labels.
        permuted: the paper protocol on labels permuted between patients (the canary's permutation).
        grid: the nested grid (real labels).
        canary: the nested grid on permuted labels (the canary's configurations), or None.
        n_boot: bootstrap replicates of the CIs.
        seed: bootstrap seed.

    Returns:
        The section.
    """
    real_rows, real_sentence = protocol_rows(real, grid, "real", n_boot=n_boot, seed=seed)
    permuted_rows, permuted_sentence = protocol_rows(permuted, canary, "permuted", n_boot=n_boot, seed=seed)
    paragraphs = [
        "The paper's protocol, reproduced for comparison only (never the saved model): " + LEAKY_STEPS + ". Each of "
        "these steps lets the test patients' labels into the figure reported; docs/protocols.md gives the mechanism "
        "of each. The saved model and every other figure of this report come from the nested protocol.",
        real_sentence,
        permuted_sentence + " With permuted labels there is nothing to learn: an AUC above 0.5 is leakage "
        "(the nested figure on permuted labels is the canary's, over its configurations).",
    ]
    tables = [ReportTable("protocols", "Nested (honest) and paper (leaky) protocols on the same data",
                          pd.DataFrame(real_rows + permuted_rows)),
              ReportTable("paper_protocol_results", "Paper protocol: every configuration's test-set figures "
                          "(threshold set on the test patients)", real.results)]
    return ReportSection(HEADING, paragraphs=paragraphs, tables=tables)

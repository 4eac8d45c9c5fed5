"""Report figures (matplotlib, Agg backend) drawn from out-of-fold predictions.

Every curve function takes out-of-fold predictions as `dlradiomics.evaluation` gives them (one
row per patient and repeat, columns `configuration`, `y_true`, `prob`), takes the curve data from
`dlradiomics.evaluation.curves`, and returns a matplotlib Figure; the caller saves it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # reports are drawn on servers without a display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix, roc_auc_score  # noqa: E402

from dlradiomics.evaluation.curves import calibration_table, decision_curve, roc_table  # noqa: E402
from dlradiomics.io.atomic import write_png_atomic  # noqa: E402

FIGURE_SIZE = (6.0, 4.6)


def _rows_of(predictions: pd.DataFrame, configuration: str) -> pd.DataFrame:
    rows = predictions[predictions["configuration"] == configuration].dropna(subset=["prob"])
    if rows.empty:
        raise ValueError(f"no out-of-fold predictions for configuration {configuration!r}")
    return rows


def roc_figure(predictions: pd.DataFrame, configurations: Sequence[str], title: str) -> Figure:
    """ROC curves of several configurations on one axis, with AUC in the legend.

    Args:
        predictions: out-of-fold predictions (`configuration`, `y_true`, `prob`).
        configurations: configurations to draw, in legend order.
        title: axis title, e.g. the comparison ("single modalities").
    """
    figure, axis = plt.subplots(figsize=FIGURE_SIZE)
    for configuration in configurations:
        rows = _rows_of(predictions, configuration)
        curve = roc_table(rows["y_true"].to_numpy(), rows["prob"].to_numpy())
        auc = roc_auc_score(rows["y_true"], rows["prob"])
        axis.plot(curve["fpr"], curve["tpr"], label=f"{configuration} (AUC {auc:.3f})")
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    axis.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.02))
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def confusion_figure(labels: Sequence[int], predicted_classes: Sequence[int], title: str) -> Figure:
    """Confusion matrix of predicted classes (at the frozen threshold) against the truth.

    Args:
        labels: true classes, 0 benign / 1 malignant.
        predicted_classes: classes at the frozen threshold.
        title: axis title.
    """
    figure, axis = plt.subplots(figsize=(4.6, 4.0))
    matrix = confusion_matrix(labels, predicted_classes, labels=[0, 1])
    ConfusionMatrixDisplay(matrix, display_labels=["benign", "malignant"]).plot(ax=axis, colorbar=False, cmap="Blues")
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def decision_curve_figure(predictions: pd.DataFrame, configurations: Sequence[str]) -> Figure:
    """Decision curves of some configurations against treat-all and treat-none.

    Args:
        predictions: out-of-fold predictions (`configuration`, `y_true`, `prob`).
        configurations: configurations to draw.
    """
    figure, axis = plt.subplots(figsize=FIGURE_SIZE)
    curve = None
    for configuration in configurations:
        rows = _rows_of(predictions, configuration)
        curve = decision_curve(rows["y_true"].to_numpy(), rows["prob"].to_numpy())
        axis.plot(curve["threshold"], curve["net_benefit_model"], label=configuration)
    if curve is not None:
        axis.plot(curve["threshold"], curve["net_benefit_treat_all"], linestyle="--", color="grey", label="treat all")
        axis.axhline(0, color="black", linewidth=0.8, label="treat none")
        prevalence = predictions["y_true"].mean()
        axis.set_ylim(-0.05, max(prevalence * 1.1, 0.05))
    axis.set(xlabel="threshold probability", ylabel="net benefit", title="Decision curve analysis")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def calibration_figure(predictions: pd.DataFrame, configurations: Sequence[str], n_bins: int = 5) -> Figure:
    """Reliability diagram (quantile bins) of some configurations.

    Args:
        predictions: out-of-fold predictions (`configuration`, `y_true`, `prob`).
        configurations: configurations to draw.
        n_bins: number of quantile bins.
    """
    figure, axis = plt.subplots(figsize=FIGURE_SIZE)
    for configuration in configurations:
        rows = _rows_of(predictions, configuration)
        curve = calibration_table(rows["y_true"].to_numpy(), rows["prob"].to_numpy(), n_bins=n_bins)
        axis.plot(curve["mean_predicted"], curve["observed_fraction"], marker="o", label=configuration)
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    axis.set(xlabel="mean predicted probability", ylabel="observed fraction malignant", title="Calibration",
             xlim=(0, 1), ylim=(0, 1))
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path) -> None:
    """Save a figure as PNG (atomically) and free its memory (reports draw many)."""
    try:
        write_png_atomic(figure, path, dpi=110)
    finally:
        plt.close(figure)

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
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix, roc_auc_score  # noqa: E402

from dlradiomics.evaluation.calibration import calibration_slope_intercept  # noqa: E402
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

    Each cell shows its count and its share of the true class (the row): the diagonal cells are the
    specificity (benign row) and the sensitivity (malignant row).

    Args:
        labels: true classes, 0 benign / 1 malignant.
        predicted_classes: classes at the frozen threshold.
        title: axis title.
    """
    figure, axis = plt.subplots(figsize=(4.6, 4.0))
    matrix = confusion_matrix(labels, predicted_classes, labels=[0, 1])
    display = ConfusionMatrixDisplay(matrix, display_labels=["benign", "malignant"])
    display.plot(ax=axis, colorbar=False, cmap="Blues")
    row_totals = matrix.sum(axis=1)
    for (row, column), text in np.ndenumerate(display.text_):
        share = matrix[row, column] / row_totals[row] if row_totals[row] else float("nan")
        text.set_text(f"{matrix[row, column]}\n({share:.0%})" if np.isfinite(share) else f"{matrix[row, column]}")
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
    """Reliability diagram (quantile bins) of some configurations, with each one's calibration slope and
    intercept (logistic recalibration, 95% CI) in the legend.

    Args:
        predictions: out-of-fold predictions (`configuration`, `y_true`, `prob`).
        configurations: configurations to draw.
        n_bins: number of quantile bins.
    """
    figure, axis = plt.subplots(figsize=FIGURE_SIZE)
    for configuration in configurations:
        rows = _rows_of(predictions, configuration)
        curve = calibration_table(rows["y_true"].to_numpy(), rows["prob"].to_numpy(), n_bins=n_bins)
        fit = calibration_slope_intercept(rows["y_true"].to_numpy(), rows["prob"].to_numpy())
        axis.plot(curve["mean_predicted"], curve["observed_fraction"], marker="o",
                  label=f"{configuration}\n{fit.describe()}")
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    axis.set(xlabel="mean predicted probability", ylabel="observed fraction malignant", title="Calibration",
             xlim=(0, 1), ylim=(0, 1))
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def forest_figure(rows: pd.DataFrame, highlight: str | None = None) -> Figure:
    """Forest plot: each configuration's AUC with its 95% CI, best first, one row each.

    Args:
        rows: ``label, auc, low, high`` (one row per configuration).
        highlight: the label to draw in red (the chosen model).
    """
    ordered = rows.sort_values("auc", ascending=True, kind="stable").reset_index(drop=True)
    height = 1.3 + 0.24 * len(ordered)
    figure, axis = plt.subplots(figsize=(8.6, height))
    for position, row in ordered.iterrows():
        chosen = row["label"] == highlight
        colour = "#c0392b" if chosen else "#2b4f78"
        axis.errorbar(row["auc"], position, xerr=[[row["auc"] - row["low"]], [row["high"] - row["auc"]]], fmt="o",
                      color=colour, ecolor=colour, capsize=2, markersize=4 if not chosen else 6)
    axis.axvline(0.5, linestyle=":", color="grey")
    axis.set_yticks(range(len(ordered)))
    axis.set_yticklabels([f"{label} (chosen)" if label == highlight else label for label in ordered["label"]],
                         fontsize=7)
    for tick, label in zip(axis.get_yticklabels(), ordered["label"]):
        if label == highlight:
            tick.set_color("#c0392b")
            tick.set_fontweight("bold")
    low = min(0.45, float(ordered["low"].min()) - 0.02) if len(ordered) else 0.45
    axis.set(xlim=(max(0.0, low), 1.0), ylim=(-0.6, len(ordered) - 0.4), xlabel="AUC (95% CI)",
             title="Every configuration, out-of-fold")
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def roi_figure(image: np.ndarray, mask: np.ndarray, margin: float = 0.3) -> Figure:
    """The lesion's neighbourhood with the mask outlined in white (a gallery image without Grad-CAM).

    Args:
        image: 2D greyscale image.
        mask: 2D lesion mask (non-zero inside).
        margin: crop margin around the lesion's box, as a share of its size on each side.
    """
    rows, columns = np.nonzero(mask)
    if rows.size:
        height, width = rows.max() - rows.min() + 1, columns.max() - columns.min() + 1
        top = max(0, int(rows.min() - margin * height))
        bottom = min(image.shape[0], int(rows.max() + margin * height) + 1)
        left = max(0, int(columns.min() - margin * width))
        right = min(image.shape[1], int(columns.max() + margin * width) + 1)
        image, mask = image[top:bottom, left:right], mask[top:bottom, left:right]
    figure, axis = plt.subplots(figsize=(2.6, 2.6))
    axis.imshow(image, cmap="gray")
    if mask.any() and not mask.all():
        axis.contour(mask > 0, levels=[0.5], colors="white", linewidths=1.0)
    axis.set_axis_off()
    figure.tight_layout(pad=0.1)
    return figure


def save_figure(figure: Figure, path) -> None:
    """Save a figure as PNG (atomically) and free its memory (reports draw many)."""
    try:
        write_png_atomic(figure, path, dpi=110)
    finally:
        plt.close(figure)

"""Grad-CAM on the backbone's last convolutional block with its trained head (pytorch-grad-cam).

For each ROI: the heatmap over the network's input crop, an overlay PNG, and the share of the
heatmap's mass that falls inside the lesion mask (cut and resized like the image). A network that
looks at the lesion scores well above the lesion's share of the crop's area.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlradiomics.features.deep.backbones import Backbone
from dlradiomics.features.deep.head import EmbeddingHeadClassifier
from dlradiomics.features.deep.preprocessing import CropSettings, prepare_roi
from dlradiomics.features.deep.threads import single_torch_thread
from dlradiomics.io.atomic import write_png_atomic

MALIGNANT_CLASS = 1


@dataclass(frozen=True)
class GradCamResult:
    """Grad-CAM of one ROI.

    Attributes:
        heatmap: ``(S, S)`` class activation map scaled to 0-1, over the network input.
        crop: ``(S, S)`` the network's input crop, 0-1 greyscale.
        mask: ``(S, S)`` the lesion mask cut and resized the same way.
        lesion_mass_fraction: share of the heatmap's total inside the mask (0-1).
        lesion_area_fraction: share of the crop's pixels inside the mask: what a heatmap
            spread evenly would score.
        probability: the head's probability of ``target_class``.
        target_class: the class index explained.
    """

    heatmap: np.ndarray
    crop: np.ndarray
    mask: np.ndarray
    lesion_mass_fraction: float
    lesion_area_fraction: float
    probability: float
    target_class: int


def lesion_mass_fraction(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Share of a non-negative heatmap's total that lies inside the mask; NaN for an all-zero map.

    Args:
        heatmap: 2D non-negative map.
        mask: 2D 0/1 mask of the same shape.
    """
    total = float(heatmap.sum())
    return float(heatmap[mask > 0].sum() / total) if total > 0 else float("nan")


def classifier_network(backbone: Backbone, head: nn.Linear | EmbeddingHeadClassifier) -> nn.Sequential:
    """The frozen backbone with the trained head on top: images in, class logits out."""
    linear = head.to_torch_head() if isinstance(head, EmbeddingHeadClassifier) else head
    return nn.Sequential(backbone.model, linear).eval()


def grad_cam_roi(backbone: Backbone, head: nn.Linear | EmbeddingHeadClassifier, image: np.ndarray,
                 mask: np.ndarray, *, settings: CropSettings = CropSettings(),
                 target_class: int = MALIGNANT_CLASS) -> GradCamResult:
    """Grad-CAM of one ROI on the backbone's last convolutional block.

    Args:
        backbone: the frozen backbone.
        head: its trained head (a fitted :class:`EmbeddingHeadClassifier` or a ``torch.nn.Linear``).
        image: 2D greyscale image.
        mask: 2D lesion mask.
        settings: the crop settings the head was trained with.
        target_class: class index to explain (1 = malignant).

    Returns:
        The heatmap, the crop and mask it lies on, and the lesion mass fraction.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    prepared = prepare_roi(image, mask, input_size=backbone.input_size, mean=backbone.mean,
                           std=backbone.std, settings=settings)
    network = classifier_network(backbone, head)
    # The trunk's parameters are frozen; gradients reach the target layer through the input.
    input_batch = prepared.tensor[None].clone().requires_grad_(True)
    with single_torch_thread(), GradCAM(model=network, target_layers=[backbone.target_layer]) as cam:
        heatmap = cam(input_tensor=input_batch, targets=[ClassifierOutputTarget(target_class)])[0]
        probability = float(torch.softmax(cam.outputs.detach(), dim=1)[0, target_class])
    return GradCamResult(
        heatmap=heatmap, crop=prepared.crop, mask=prepared.mask,
        lesion_mass_fraction=lesion_mass_fraction(heatmap, prepared.mask),
        lesion_area_fraction=float(prepared.mask.mean()), probability=probability,
        target_class=target_class,
    )


def save_overlay(result: GradCamResult, path: str | os.PathLike[str], *, outline_lesion: bool = True) -> Path:
    """Write the heatmap over the ROI crop as a PNG, with the lesion outline drawn in white.

    Args:
        result: a :func:`grad_cam_roi` result.
        path: destination PNG; parent folders are created.
        outline_lesion: draw the mask's boundary so a reader can judge where the heatmap lies.

    Returns:
        The path written.
    """
    from PIL import Image
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from skimage.segmentation import find_boundaries

    rgb_crop = np.repeat(result.crop[:, :, None], 3, axis=2).astype(np.float32)
    overlay = show_cam_on_image(rgb_crop, result.heatmap, use_rgb=True)
    if outline_lesion:
        overlay[find_boundaries(result.mask > 0, mode="inner")] = 255
    return write_png_atomic(Image.fromarray(overlay), path)


GRADCAM_COLUMNS = ["roi_id", "patient_id", "label", "probability", "lesion_mass_fraction",
                   "lesion_area_fraction", "overlay", "error"]


def grad_cam_cohort(cohort, backbone: Backbone, head: nn.Linear | EmbeddingHeadClassifier,
                    out_dir: str | os.PathLike[str], *, roi_ids: list[str] | None = None,
                    settings: CropSettings = CropSettings(), target_class: int = MALIGNANT_CLASS):
    """Grad-CAM overlays for ROIs of a cohort, and a table of how much of each heatmap is on the lesion.

    Args:
        cohort: a :class:`~dlradiomics.cohort.Cohort` or its table.
        backbone: the frozen backbone.
        head: its trained head.
        out_dir: folder for the overlay PNGs (``{roi_id with / as __}.png``).
        roi_ids: the ROIs to explain; default: all.
        settings: crop settings the head was trained with.
        target_class: class index to explain (1 = malignant).

    Returns:
        DataFrame ``roi_id, patient_id, label, probability, lesion_mass_fraction,
        lesion_area_fraction, overlay, error`` (``error`` names the problem of an ROI that failed).
    """
    import pandas as pd

    from dlradiomics.cohort import load_row_roi

    table = cohort.table if hasattr(cohort, "table") else cohort
    if roi_ids is not None:
        unknown = sorted(set(roi_ids) - set(table["roi_id"]))
        if unknown:
            raise ValueError(f"roi_ids not in the cohort: {unknown[:5]}")
        table = table[table["roi_id"].isin(roi_ids)]
    rows = []
    for _, row in table.iterrows():
        record = {"roi_id": row["roi_id"], "patient_id": row["patient_id"], "label": row["label"]}
        try:
            roi = load_row_roi(row)
            result = grad_cam_roi(backbone, head, roi.image, roi.mask, settings=settings, target_class=target_class)
        except (ValueError, OSError) as error:
            rows.append({**record, "error": f"{row['image']}: {error}"})
            continue
        overlay = save_overlay(result, Path(out_dir) / f"{str(row['roi_id']).replace('/', '__')}.png")
        rows.append({**record, "probability": result.probability,
                     "lesion_mass_fraction": result.lesion_mass_fraction,
                     "lesion_area_fraction": result.lesion_area_fraction, "overlay": str(overlay), "error": None})
    return pd.DataFrame(rows, columns=GRADCAM_COLUMNS)

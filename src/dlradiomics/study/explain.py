"""Grad-CAM for the deep models: a trained head per modality on the frozen backbone, and overlays.

Grad-CAM needs a differentiable path from the image to the class score. The study's deep models
(PCA + classifier on embeddings) are not one, so, as the paper does, a new fully connected head is
trained on each modality's embeddings (`EmbeddingHeadClassifier`) and Grad-CAM runs through the
frozen backbone and that head. The heads travel in the bundle as safetensors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dlradiomics.cohort import load_row_roi
from dlradiomics.progress import Progress

logger = logging.getLogger(__name__)


def fit_gradcam_heads(deep_table: pd.DataFrame, modalities: list[str], *, epochs: int = 200,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Train one linear head per modality on its deep embeddings; return the weights as tensors.

    Args:
        deep_table: image-level embeddings (`deep_*` columns) with `modality` and `label`.
        modalities: modalities to train a head for (those without images are skipped).
        epochs: SGD epochs (the paper's 200).
        seed: seed of initialisation and batch order.

    Returns:
        `{"{modality}.weight": (2, d), "{modality}.bias": (2,)}` float32 arrays.
    """
    # imported on use: the deep features import torch, which a radiomic-only study never needs
    from dlradiomics.features.deep import EmbeddingHeadClassifier

    deep_columns = [column for column in deep_table.columns if str(column).startswith("deep_")]
    tensors: dict[str, np.ndarray] = {}
    for modality in modalities:
        rows = deep_table[deep_table["modality"] == modality]
        if rows["label"].nunique() < 2:
            logger.warning("Grad-CAM head for %s skipped: its images hold one class only", modality)
            continue
        head = EmbeddingHeadClassifier(epochs=epochs, seed=seed).fit(rows[deep_columns].to_numpy(np.float32),
                                                                    rows["label"].to_numpy())
        tensors[f"{modality}.weight"] = np.asarray(head.coef_, dtype=np.float32)
        tensors[f"{modality}.bias"] = np.asarray(head.intercept_, dtype=np.float32)
    return tensors


def heads_from_tensors(tensors: dict[str, np.ndarray]):
    """Rebuild `torch.nn.Linear` heads from `fit_gradcam_heads` tensors, by modality."""
    import torch  # imported on use: a radiomic-only study never needs torch

    heads = {}
    for name in tensors:
        if not name.endswith(".weight"):
            continue
        modality = name[: -len(".weight")]
        weight = torch.from_numpy(np.array(tensors[name]))
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(torch.from_numpy(np.array(tensors[f"{modality}.bias"])))
        heads[modality] = linear.eval()
    return heads


def write_gradcam_overlays(rows: pd.DataFrame, out_dir: Path, *, tensors: dict[str, np.ndarray],
                           backbone: str, weights: str | None, limit: int | None = None,
                           progress: bool = False, weights_dir: Path | None = None) -> pd.DataFrame:
    """Grad-CAM overlays (PNG) of some ROIs, on the backbone with the modality's head.

    Args:
        rows: cohort rows (`roi_id, patient_id, modality, image, mask`, ...).
        out_dir: folder for the PNG files.
        tensors: head weights from `fit_gradcam_heads`.
        backbone: backbone name.
        weights: backbone weights id or path.
        limit: at most this many overlays (None: all rows).
        progress: show the count of overlays drawn and the time left.
        weights_dir: the checked store of torchvision's ImageNet files (None: its default).

    Returns:
        One row per overlay: `roi_id, patient_id, modality, path, probability,
        lesion_mass_fraction, lesion_area_fraction`, or `error` when the ROI could not be explained.
    """
    # imported on use: the deep features import torch, which a radiomic-only study never needs
    from dlradiomics.features.deep import create_backbone
    from dlradiomics.features.deep.gradcam import grad_cam_roi, save_overlay

    heads = heads_from_tensors(tensors)
    chosen = rows[rows["modality"].isin(list(heads))]
    if limit is not None:
        chosen = chosen.head(limit)
    if chosen.empty:
        return pd.DataFrame(columns=["roi_id", "patient_id", "modality", "path", "probability",
                                     "lesion_mass_fraction", "lesion_area_fraction", "error"])
    network = create_backbone(backbone, weights, weights_dir=weights_dir)
    out_dir = Path(out_dir)
    records = []
    with Progress(len(chosen), "Grad-CAM overlays", unit="image", enabled=progress) as bar:
        for _, row in chosen.iterrows():
            record = {"roi_id": row["roi_id"], "patient_id": row["patient_id"], "modality": row["modality"]}
            try:
                roi = load_row_roi(row)
                result = grad_cam_roi(network, heads[row["modality"]], roi.image, roi.mask)
            except Exception as error:  # one unreadable ROI must not cost the whole gallery
                logger.warning("Grad-CAM of %s failed: %s", row["roi_id"], error)
                records.append({**record, "error": str(error)})
            else:
                name = str(row["roi_id"]).replace("/", "_").replace("#", "-") + ".png"
                path = save_overlay(result, out_dir / name)
                records.append({**record, "path": str(path), "probability": result.probability,
                                "lesion_mass_fraction": result.lesion_mass_fraction,
                                "lesion_area_fraction": result.lesion_area_fraction, "error": ""})
            bar.update()
    return pd.DataFrame.from_records(records)

"""ROI preprocessing for the CNNs, as the paper does it.

The rectangular bounding box of the lesion mask, widened by a margin, is cut out of the image; the
crop is scaled to 0-1, copied into three channels, resized to the backbone's square input and
normalised with the backbone's mean and standard deviation. The mask goes through the same crop
and resize, so Grad-CAM heatmaps can be compared with the lesion.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlradiomics.io.atomic import write_png_atomic

if TYPE_CHECKING:
    import torch

DEFAULT_MARGIN = 0.1


@dataclass(frozen=True)
class CropSettings:
    """How an ROI becomes a network input; every field is part of the embedding cache key.

    Args:
        margin: fraction of the bounding box's height (width) added above and below (left and
            right) of it, clipped at the image border. 0 gives the tight box.
    """

    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        if not (0.0 <= self.margin <= 5.0):
            raise ValueError(f"crop margin must be a fraction between 0 and 5, got {self.margin}")

    def as_dict(self) -> dict[str, object]:
        """The settings as plain values, for cache keys and provenance."""
        return {"crop": "mask-bbox", "intensity": "crop-minmax", "resize": "bilinear-antialias",
                **asdict(self)}


@dataclass(frozen=True)
class PreparedRoi:
    """One ROI ready for a backbone.

    Attributes:
        tensor: normalised network input ``(3, S, S)``, float32.
        crop: the resized crop scaled to 0-1 ``(S, S)``, for overlays and inspection.
        mask: the lesion mask cut and resized the same way ``(S, S)``, uint8 0/1.
    """

    tensor: torch.Tensor
    crop: np.ndarray
    mask: np.ndarray


def mask_bounding_box(mask: np.ndarray, margin: float = DEFAULT_MARGIN) -> tuple[int, int, int, int]:
    """The lesion's bounding box widened by ``margin``, as slice bounds.

    Args:
        mask: 2D array, nonzero = lesion.
        margin: fraction of the box's height/width added on each side.

    Returns:
        ``(row_start, row_stop, col_start, col_stop)``, clipped to the image.

    Raises:
        ValueError: the mask holds no lesion pixel.
    """
    rows = np.flatnonzero(np.any(mask, axis=1))
    cols = np.flatnonzero(np.any(mask, axis=0))
    if rows.size == 0:
        raise ValueError("the mask is empty: no lesion pixel to crop around")
    row_start, row_stop = int(rows[0]), int(rows[-1]) + 1
    col_start, col_stop = int(cols[0]), int(cols[-1]) + 1
    row_pad = int(round(margin * (row_stop - row_start)))
    col_pad = int(round(margin * (col_stop - col_start)))
    height, width = mask.shape
    return (max(0, row_start - row_pad), min(height, row_stop + row_pad),
            max(0, col_start - col_pad), min(width, col_stop + col_pad))


def roi_crop(image: np.ndarray, mask: np.ndarray, margin: float = DEFAULT_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Cut the widened bounding box of the lesion out of the image and the mask.

    Args:
        image: 2D greyscale image.
        mask: 2D lesion mask of the same shape.
        margin: fraction of the box's size added on each side.

    Returns:
        ``(image_crop, mask_crop)``.
    """
    if image.shape != mask.shape:
        raise ValueError(f"image {image.shape} and mask {mask.shape} differ in shape")
    row_start, row_stop, col_start, col_stop = mask_bounding_box(mask, margin)
    return (image[row_start:row_stop, col_start:col_stop],
            mask[row_start:row_stop, col_start:col_stop])


def _scale_to_unit(crop: np.ndarray) -> np.ndarray:
    # Min-max within the crop: intensities of MRI and DICOM have no fixed range, and a flat crop
    # (constant intensity) maps to zeros rather than dividing by zero.
    crop = crop.astype(np.float32)
    low, high = float(crop.min()), float(crop.max())
    if high <= low:
        return np.zeros_like(crop)
    return (crop - low) / (high - low)


def prepare_roi(image: np.ndarray, mask: np.ndarray, *, input_size: int, mean: tuple[float, ...],
                std: tuple[float, ...], settings: CropSettings = CropSettings()) -> PreparedRoi:
    """Crop, scale, resize and normalise one ROI for a backbone.

    Args:
        image: 2D greyscale image (original intensities).
        mask: 2D lesion mask of the same shape.
        input_size: the backbone's square input side.
        mean: the backbone's per-channel mean (0-1 scale).
        std: the backbone's per-channel standard deviation.
        settings: crop settings.

    Returns:
        The network input, the resized 0-1 crop and the resized mask.
    """
    # Here, not at the top: torch is imported only where a network input is made, so a fully cached
    # embedding run (its crop settings are part of every key) never imports it.
    import torch
    import torch.nn.functional as functional

    image_crop, mask_crop = roi_crop(np.asarray(image), np.asarray(mask), settings.margin)
    unit = torch.from_numpy(_scale_to_unit(image_crop))[None, None]
    resized = functional.interpolate(unit, size=(input_size, input_size), mode="bilinear",
                                     align_corners=False, antialias=True).clamp_(0.0, 1.0)[0, 0]
    mask_tensor = torch.from_numpy((mask_crop > 0).astype(np.float32))[None, None]
    resized_mask = functional.interpolate(mask_tensor, size=(input_size, input_size), mode="nearest-exact")[0, 0]
    mean_tensor = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    std_tensor = torch.tensor(std, dtype=torch.float32)[:, None, None]
    tensor = (resized.expand(3, -1, -1) - mean_tensor) / std_tensor
    return PreparedRoi(tensor=tensor.contiguous(), crop=resized.numpy().copy(),
                       mask=resized_mask.numpy().astype(np.uint8))


def save_crop_png(crop: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Save a 0-1 crop as an 8-bit greyscale PNG, for a person to check what the network sees.

    Args:
        crop: 2D array scaled to 0-1.
        path: destination file; parent folders are created.

    Returns:
        The path written.
    """
    from PIL import Image

    return write_png_atomic(Image.fromarray(np.round(np.clip(crop, 0.0, 1.0) * 255).astype(np.uint8)), path)

"""Intensity profiles of images: how training images were stored and how bright they were.

`fit_final_model` records one `IntensityProfile` per modality in the bundle; `predict_manifest`
measures each new image the same way and flags those unlike the training images (an 8-bit
model given a 16-bit file, a rescaled export ...).

Intensities are measured on the `RoiImage` the features are computed from (after any read-time
convention of `dlradiomics.io`), the pixel type on the file as stored.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from dlradiomics.bundle import ImageIntensity, IntensityProfile
from dlradiomics.io import ImageReadError, read_image, roi_from_arrays

logger = logging.getLogger(__name__)
PROFILE_IMAGES = 256  # training images measured per modality: enough for the range, cheap on a large cohort


def _optional_int(row: pd.Series, column: str) -> int | None:
    value = row.get(column)
    return None if value is None or pd.isna(value) else int(value)


def image_intensity(row: pd.Series) -> ImageIntensity:
    """Measure the image of one cohort (or feature-table) row.

    Args:
        row: with `image` and `mask` paths, and optionally `mask_label` and `slice`.

    Raises:
        ImageReadError: the files cannot be read.
    """
    image = read_image(row["image"])
    mask = read_image(row["mask"], as_labels=True)
    roi = roi_from_arrays(image, mask, row["image"], row["mask"], mask_label=_optional_int(row, "mask_label"),
                          slice_index=_optional_int(row, "slice"))
    return ImageIntensity.of(image.array.dtype, roi.image)


def training_intensity_profiles(rows: pd.DataFrame, modalities: list[str], *,
                                limit: int = PROFILE_IMAGES) -> dict[str, IntensityProfile]:
    """The intensity profile of each modality's training images.

    Args:
        rows: image rows (`roi_id`, `modality`, `image`, `mask`), e.g. a feature table.
        modalities: modalities to profile.
        limit: at most this many images per modality, spread evenly over the sorted `roi_id`s.

    Returns:
        Modality -> profile (a modality none of whose images could be read is left out, with a warning).
    """
    profiles = {}
    for modality in modalities:
        chosen = rows[rows["modality"] == modality].drop_duplicates("roi_id").sort_values("roi_id")
        if len(chosen) > limit:
            chosen = chosen.iloc[np.linspace(0, len(chosen) - 1, limit).round().astype(int)]
        measured = []
        for _, row in chosen.iterrows():
            try:
                measured.append(image_intensity(row))
            except (ImageReadError, ValueError) as error:
                logger.warning("intensity profile: %s skipped: %s", row["roi_id"], error)
        if measured:
            profiles[modality] = IntensityProfile.of(measured)
        else:
            logger.warning("intensity profile of %s: no image could be measured; new %s images will not be checked",
                           modality, modality)
    return profiles

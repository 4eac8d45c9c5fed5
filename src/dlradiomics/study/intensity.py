"""Intensity profiles of training images: how they were stored and how bright they were.

`fit_final_model` records one `TrainingIntensityProfile` per modality in the bundle, built from
each image's `dlradiomics.io.IntensityProfile` (measured under io's intensity convention, as the
features see the image); `predict_manifest` measures each new image the same way and flags those
unlike the training images.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from dlradiomics.bundle import TrainingIntensityProfile
from dlradiomics.cohort import load_row_roi
from dlradiomics.io import ImageReadError, IntensityProfile

logger = logging.getLogger(__name__)
PROFILE_IMAGES = 64  # training images measured per modality: enough for the range; about 40 ms each under load


def image_intensity(row: pd.Series) -> IntensityProfile:
    """The intensity profile of the image of one cohort (or feature-table) row.

    Args:
        row: with `image` and `mask` paths, and optionally `mask_label` and `slice`.

    Raises:
        ImageReadError: the files cannot be read.
    """
    return load_row_roi(row).intensity_profile()


def training_intensity_profiles(rows: pd.DataFrame, modalities: list[str], *,
                                limit: int = PROFILE_IMAGES) -> dict[str, TrainingIntensityProfile]:
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
            profiles[modality] = TrainingIntensityProfile.of(measured)
        else:
            logger.warning("intensity profile of %s: no image could be measured; new %s images will not be checked",
                           modality, modality)
    return profiles

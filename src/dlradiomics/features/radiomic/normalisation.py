"""Per-image intensity normalisations, applied before any radiomic family (see ``families``).

None of them learns anything from other images, so none needs fitting inside training folds; a
normalisation fitted on a cohort would have to be, and would force a re-extraction per fold.
"""

from __future__ import annotations

import numpy as np

# roi_zscore multiplies z-scores by this, as PyRadiomics' ``normalizeScale`` does, so that a bin
# width of 25 gives about 24 bins over +-3 standard deviations.
ZSCORE_SCALE = 100.0


class NormalisationError(ValueError):
    """The image cannot be normalised (no spread of intensity to scale by)."""


def normalise_intensities(image: np.ndarray, lesion: np.ndarray, method: str) -> np.ndarray:
    """The image under one of :data:`dlradiomics.features.radiomic.families.NORMALISATIONS`.

    Args:
        image: 2D float array (io's intensity convention applied).
        lesion: 2D 0/1 lesion mask.
        method: ``"none"``, ``"roi_zscore"`` or ``"image_percentile"``.

    Returns:
        A float32 image of the same shape (``image`` itself for ``"none"``).

    Raises:
        NormalisationError: the lesion (``roi_zscore``) or the image (``image_percentile``) has
            no spread of intensity.
        ValueError: an unknown method.
    """
    if method == "none":
        return image
    if method == "roi_zscore":
        values = image[lesion > 0].astype(np.float64)
        spread = values.std()
        if not spread > 0:
            raise NormalisationError("the lesion has one intensity; a z-score within it is undefined")
        return ((image - values.mean()) / spread * ZSCORE_SCALE).astype(np.float32)
    if method == "image_percentile":
        low, high = np.percentile(image, (1.0, 99.0))
        if not high > low:
            raise NormalisationError("the image's 1st and 99th percentiles are equal; nothing to scale")
        return ((image - low) / (high - low) * 255.0).astype(np.float32)
    raise ValueError(f"unknown normalisation {method!r}")

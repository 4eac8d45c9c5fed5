"""Masks that cannot be lesion masks, and images that cannot be measured, caught when an ROI is read.

A wrong file in a manifest still reads: the image given again as its own mask, image and mask
swapped, a mask that is all lesion, a mask whose lesion and background are inverted. Each gives
features of something that is not the lesion, silently. :func:`implausible_roi` names the problem
so that reading the ROI fails with an :class:`ImageReadError` of that kind, and every room (QA,
extraction, embeddings, prediction) reports the row instead of using it.

The rules are conservative (on the 1,875 BUS-BRA masks, the BreastDM, mini-MIAS and demo masks,
no lesion covers more than 58% of its image or touches all four borders):

- ``mask_is_image``: the mask file holds the same pixels as the image (more than two grey levels);
- ``swapped_image_mask``: the image has at most two grey levels while the mask has many (more
  than :data:`MANY_LEVELS`, which no label mask has);
- ``full_frame_mask``: the lesion covers at least :data:`FULL_FRAME_FRACTION` of the image;
- ``inverted_mask``: the lesion covers more than half the image and touches all four borders,
  while the background is an island that touches none (the lesion is the background);
- ``non_finite_pixels``: the image holds NaN or infinite values.

This module imports nothing else of the package but the io room.
"""

from __future__ import annotations

import numpy as np

FULL_FRAME_FRACTION = 0.99
MANY_LEVELS = 64


def implausible_roi(image: np.ndarray, raw_mask: np.ndarray, lesion: np.ndarray) -> tuple[str, str] | None:
    """Why an image plane and its mask plane cannot be a lesion and its image, or ``None``.

    Args:
        image: the 2D image plane, as read.
        raw_mask: the 2D mask plane, as read (label values, before choosing the lesion).
        lesion: the 2D boolean lesion of that plane.

    Returns:
        ``(kind, explanation)`` with ``kind`` one of ``mask_is_image``, ``swapped_image_mask``,
        ``full_frame_mask``, ``inverted_mask``, ``non_finite_pixels``; ``None`` when plausible.
    """
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        return "non_finite_pixels", "the image holds NaN or infinite pixel values"
    if image.shape == raw_mask.shape and _more_than_two_levels(raw_mask) and np.array_equal(image, raw_mask):
        return "mask_is_image", "the mask holds the same pixels as the image (the image file given twice?)"
    if _at_most_two_levels(image) and _more_than_two_levels(raw_mask):
        levels = np.unique(raw_mask).size
        if levels > MANY_LEVELS:
            return ("swapped_image_mask", f"the image has at most two grey levels while the mask has {levels}: "
                    "image and mask look swapped")
    fraction = float(lesion.mean())
    if fraction >= FULL_FRAME_FRACTION:
        return ("full_frame_mask", f"the lesion covers {fraction:.1%} of the image: a full-frame mask cannot outline "
                "a lesion")
    if fraction > 0.5 and _touches_all_borders(lesion):
        background = ~lesion
        if background.any() and not _touches_any_border(background):
            return ("inverted_mask", f"the lesion covers {fraction:.0%} of the image and surrounds the background, "
                    "which touches no border: lesion and background look inverted")
    return None


def _at_most_two_levels(array: np.ndarray) -> bool:
    low, high = array.min(), array.max()
    return not np.any((array != low) & (array != high))


def _more_than_two_levels(array: np.ndarray) -> bool:
    return not _at_most_two_levels(array)


def _touches_all_borders(region: np.ndarray) -> bool:
    return bool(region[0, :].any() and region[-1, :].any() and region[:, 0].any() and region[:, -1].any())


def _touches_any_border(region: np.ndarray) -> bool:
    return bool(region[0, :].any() or region[-1, :].any() or region[:, 0].any() or region[:, -1].any())

"""Texture features of a real BUS-BRA ROI against an independent numpy computation from the definitions.

GLCM (IBSI 3.6): symmetric co-occurrences at distance 1 along the four in-plane directions, one
matrix per direction, features averaged over directions. GLSZM (IBSI 3.8): zones are 8-connected
groups of pixels of one grey level; zone percentage is the number of zones over the number of ROI
pixels. Discretisation as PyRadiomics does it (docs/ibsi.md): bins of width 25 anchored at
multiples of 25, numbered from 1 at the ROI's lowest bin.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from dlradiomics.features.radiomic import extract_roi_features
from dlradiomics.io import load_roi

BIN_WIDTH = 25
# The four in-plane directions (row step, column step): 0, 45, 90 and 135 degrees.
DIRECTIONS = ((0, 1), (-1, 1), (-1, 0), (-1, -1))


def _discretised(image: np.ndarray, lesion: np.ndarray) -> np.ndarray:
    bins = np.floor(image / BIN_WIDTH).astype(int)
    return bins - bins[lesion].min() + 1


def _glcm(levels: np.ndarray, lesion: np.ndarray, step: tuple[int, int]) -> np.ndarray:
    """Normalised symmetric co-occurrence matrix of one direction."""
    n_levels = levels[lesion].max()
    counts = np.zeros((n_levels + 1, n_levels + 1))
    rows, cols = np.nonzero(lesion)
    to_rows, to_cols = rows + step[0], cols + step[1]
    inside = (to_rows >= 0) & (to_rows < lesion.shape[0]) & (to_cols >= 0) & (to_cols < lesion.shape[1])
    rows, cols, to_rows, to_cols = rows[inside], cols[inside], to_rows[inside], to_cols[inside]
    both = lesion[to_rows, to_cols]
    first, second = levels[rows[both], cols[both]], levels[to_rows[both], to_cols[both]]
    np.add.at(counts, (first, second), 1)
    np.add.at(counts, (second, first), 1)
    return counts / counts.sum()


def _glcm_features(levels: np.ndarray, lesion: np.ndarray) -> tuple[float, float]:
    energies, contrasts = [], []
    for step in DIRECTIONS:
        p = _glcm(levels, lesion, step)
        i, j = np.indices(p.shape)
        energies.append(np.sum(p**2))
        contrasts.append(np.sum((i - j) ** 2 * p))
    return float(np.mean(energies)), float(np.mean(contrasts))


def _zone_percentage(levels: np.ndarray, lesion: np.ndarray) -> float:
    eight_connected = np.ones((3, 3), dtype=bool)
    zones = sum(ndimage.label(lesion & (levels == level), structure=eight_connected)[1]
                for level in np.unique(levels[lesion]))
    return zones / lesion.sum()


@pytest.fixture(scope="module")
def bus_0001_l(bus_bra_dir):
    return bus_bra_dir / "Images" / "bus_0001-l.png", bus_bra_dir / "Masks" / "mask_0001-l.png"


def test_glcm_and_glszm_equal_the_definitions_on_bus_0001_l(bus_0001_l):
    image_path, mask_path = bus_0001_l
    image = np.asarray(Image.open(image_path), dtype=np.float64)
    lesion = np.asarray(Image.open(mask_path)) > 0
    levels = _discretised(image, lesion)
    joint_energy, contrast = _glcm_features(levels, lesion)
    zone_percentage = _zone_percentage(levels, lesion)
    # The values issue 9 gives for this ROI, from the same definitions.
    assert (round(joint_energy, 5), round(contrast, 5), round(zone_percentage, 5)) == (0.34836, 0.23967, 0.01624)

    ours = extract_roi_features(load_roi(image_path, mask_path))
    np.testing.assert_allclose(
        [ours["original_glcm_JointEnergy"], ours["original_glcm_Contrast"], ours["original_glszm_ZonePercentage"]],
        [joint_energy, contrast, zone_percentage],
        rtol=1e-10,
    )

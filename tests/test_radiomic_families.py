"""Feature families: their settings, the peritumoral ring, normalisation, and names in the table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlradiomics.features.radiomic import (
    FamilySettingsError,
    FeatureFamilies,
    extract_roi_features,
    PeritumoralRing,
    load_radiomics_params,
    radiomic_feature_columns,
)
from dlradiomics.features.radiomic.ring import peritumoral_ring_mask, ring_for
from dlradiomics.io import RoiImage


def _disc(shape, centre, radius) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) <= radius**2).astype(np.uint8)


def _brute_force_ring(lesion: np.ndarray, spacing, width) -> np.ndarray:
    inside = np.argwhere(lesion > 0) * np.asarray(spacing)
    ring = np.zeros_like(lesion)
    for row, col in np.argwhere(lesion == 0):
        if np.min(np.hypot(*(inside - np.array([row, col]) * np.asarray(spacing)).T)) <= width:
            ring[row, col] = 1
    return ring


@pytest.mark.parametrize("spacing, width", [((1.0, 1.0), 3.0), ((0.5, 0.8), 2.0)])
def test_ring_is_every_outside_pixel_within_the_width(spacing, width):
    # The lesion touches the top border: the band must stop there, not wrap around.
    lesion = _disc((30, 28), (2, 12), 6)
    ring = peritumoral_ring_mask(lesion, spacing, width)
    np.testing.assert_array_equal(ring, _brute_force_ring(lesion, spacing, width))
    assert not (ring & lesion).any()


def test_ring_width_is_in_mm_only_where_the_spacing_is_known():
    lesion = _disc((40, 40), (20, 20), 5)
    settings = PeritumoralRing(width_px=4, width_mm=2.0)
    in_pixels = ring_for(lesion, (0.5, 0.5), "pixel", settings)
    in_mm = ring_for(lesion, (0.5, 0.5), "mm", settings)
    np.testing.assert_array_equal(in_pixels, peritumoral_ring_mask(lesion, (1.0, 1.0), 4))
    np.testing.assert_array_equal(in_mm, peritumoral_ring_mask(lesion, (0.5, 0.5), 2.0))
    assert in_pixels.sum() == in_mm.sum()  # 4 px of 0.5 mm = 2 mm


def test_families_are_read_from_the_dlradiomics_section():
    families = FeatureFamilies.from_params({"dlradiomics": {
        "peritumoral": {"width_px": 12}, "log": {"sigmas": [1, 2]}, "wavelet": True,
        "normalisation": {"us": "roi_zscore"}}})
    assert families.peritumoral.width_px == 12 and families.log.sigmas == (1, 2)
    assert families.wavelet.name == "coif1"
    assert families.normalisation_for("US") == "roi_zscore" and families.normalisation_for("MG") == "none"
    assert FeatureFamilies.from_params({}) == FeatureFamilies()


@pytest.mark.parametrize("section, named", [
    ({"ring": {}}, "ring"),
    ({"peritumoral": {"width_px": -3}}, "width_px"),
    ({"log": {"sigmas": []}}, "sigmas"),
    ({"wavelet": {"name": "coif99"}}, "coif99"),
    ({"normalisation": {"US": "zscore"}}, "normalisation.US"),
])
def test_bad_family_settings_are_refused_naming_the_key(section, named):
    with pytest.raises(FamilySettingsError, match=named):
        FeatureFamilies.from_params({"dlradiomics": section})


@pytest.fixture(scope="module")
def roi() -> RoiImage:
    rng = np.random.default_rng(3)
    image = rng.normal(150, 30, size=(64, 64)).astype(np.float32)
    lesion = _disc((64, 64), (30, 34), 12)
    image[lesion > 0] = rng.normal(70, 20, size=int(lesion.sum()))
    return RoiImage(np.clip(image, 0, 255), lesion, (1.0, 1.0), "img.png", "mask.png")


def test_families_add_named_features_and_keep_the_lesions(roi):
    params = load_radiomics_params(overrides={"dlradiomics": {
        "peritumoral": {"width_px": 5}, "log": {"sigmas": [1.0]}, "wavelet": {"name": "haar"}}})
    lesion_only = extract_roi_features(roi, load_radiomics_params())
    features = extract_roi_features(roi, params)
    assert {name: features[name] for name in lesion_only} == lesion_only
    prefixes = {name.split("_")[0] for name in features if name not in lesion_only}
    assert prefixes == {"peri", "log-sigma-1-0-mm-2D", "wavelet-LL", "wavelet-LH", "wavelet-HL", "wavelet-HH"}
    assert not any("shape2D" in name for name in features if name not in lesion_only)
    assert radiomic_feature_columns(pd.DataFrame(columns=list(features))) == list(features)


def test_roi_zscore_makes_features_invariant_to_a_linear_intensity_change(roi):
    # It learns nothing from other images: a per-image z-score within the lesion.
    params = load_radiomics_params(overrides={"dlradiomics": {"normalisation": {"US": "roi_zscore"}}})
    brighter = RoiImage(roi.image * 1.7 + 20, roi.mask, roi.spacing, "b.png", "mask.png")
    original = extract_roi_features(roi, params, modality="US")
    changed = extract_roi_features(brighter, params, modality="US")
    texture = [name for name in original if "_glcm_" in name or "_glszm_" in name]
    np.testing.assert_allclose([changed[n] for n in texture], [original[n] for n in texture], rtol=1e-6, atol=1e-9)
    # Without normalisation the same change moves them.
    plain = load_radiomics_params()
    assert extract_roi_features(brighter, plain)["original_glcm_JointEnergy"] != pytest.approx(
        extract_roi_features(roi, plain)["original_glcm_JointEnergy"])


def test_a_filtered_familys_own_bin_width_changes_only_its_features(roi):
    coarse = extract_roi_features(roi, load_radiomics_params(overrides={"dlradiomics": {"wavelet": {"name": "haar"}}}))
    fine = extract_roi_features(
        roi, load_radiomics_params(overrides={"dlradiomics": {"wavelet": {"name": "haar", "bin_width": 5}}}))
    assert fine["original_glcm_JointEntropy"] == coarse["original_glcm_JointEntropy"]
    # Five times narrower bins resolve more grey levels: a higher histogram entropy.
    assert fine["wavelet-HH_firstorder_Entropy"] > coarse["wavelet-HH_firstorder_Entropy"] + 1

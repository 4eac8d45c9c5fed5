"""2D filtered images (LoG, wavelet) against PyRadiomics' own filters on a 2D image where they run."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from radiomics import imageoperations
from radiomics.featureextractor import RadiomicsFeatureExtractor

from dlradiomics.features.radiomic import extract_roi_features, load_radiomics_params
from dlradiomics.features.radiomic.filters import laplacian_of_gaussian, log_image_name, wavelet_subbands
from dlradiomics.io import RoiImage

SPACING = (0.8, 0.6)  # (row, col) mm: anisotropic, so that a swapped axis would show


@pytest.fixture(scope="module")
def image_and_mask():
    rng = np.random.default_rng(7)
    image = rng.normal(120, 30, size=(41, 36)).astype(np.float32)  # odd rows: the wavelet pads
    rows, cols = np.mgrid[:41, :36]
    mask = (((rows - 20) / 11) ** 2 + ((cols - 17) / 9) ** 2 <= 1).astype(np.uint8)
    image[mask > 0] -= 40
    return image, mask


def _sitk_2d(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((SPACING[1], SPACING[0]))
    return image


@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_log_equals_pyradiomics_log_on_a_2d_image(image_and_mask, sigma):
    image, mask = image_and_mask
    (theirs, name, _), = imageoperations.getLoGImage(_sitk_2d(image), _sitk_2d(mask), sigma=[sigma])
    ours = laplacian_of_gaussian(image, SPACING, sigma)
    np.testing.assert_allclose(ours, sitk.GetArrayFromImage(theirs), rtol=1e-5, atol=1e-4)
    assert name.replace("3D", "2D") == log_image_name(sigma)


def test_wavelet_subbands_equal_pyradiomics_wavelet_on_a_2d_image(image_and_mask):
    image, mask = image_and_mask
    theirs = {name: sitk.GetArrayFromImage(band) for band, name, _ in
              imageoperations.getWaveletImage(_sitk_2d(image), _sitk_2d(mask), wavelet="coif1", force2D=False)}
    ours = wavelet_subbands(image, "coif1")
    assert set(ours) == set(theirs) == {"wavelet-LL", "wavelet-LH", "wavelet-HL", "wavelet-HH"}
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-3, err_msg=name)


def test_log_features_equal_pyradiomics_on_its_own_log_image(image_and_mask):
    # The whole chain: dlradiomics' LoG family against PyRadiomics extracting from the response of
    # PyRadiomics' own LoG filter, handed over as a one-slice volume.
    image, mask = image_and_mask
    params = load_radiomics_params(overrides={"dlradiomics": {"log": {"sigmas": [2.0]}}})
    ours = extract_roi_features(RoiImage(image, mask, SPACING, "img", "mask", spacing_unit="mm"), params)
    (response, _, _), = imageoperations.getLoGImage(_sitk_2d(image), _sitk_2d(mask), sigma=[2.0])
    classes = {name: value for name, value in params["featureClass"].items() if name != "shape2D"}
    extractor = RadiomicsFeatureExtractor({"setting": params["setting"], "featureClass": classes})
    theirs = extractor.execute(sitk.JoinSeries(response), sitk.JoinSeries(_sitk_2d(mask)), label=1)
    prefix = log_image_name(2.0)
    compared = 0
    for name, value in theirs.items():
        if name.startswith("original_"):
            np.testing.assert_allclose(ours[prefix + name[len("original"):]], float(value), rtol=1e-4, atol=1e-6,
                                       err_msg=name)
            compared += 1
    assert compared == len([name for name in ours if name.startswith(prefix)]) > 80

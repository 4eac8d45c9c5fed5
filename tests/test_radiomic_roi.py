"""PyRadiomics features of one ROI: equal to PyRadiomics run directly on the files (one-slice
volumes, the IBSI way); clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyradiomics_reference import direct_pyradiomics

from dlradiomics.features.radiomic import (
    RadiomicFeatureError,
    extract_roi_features,
    radiomic_feature_columns,
)
from dlradiomics.io import RoiImage, load_roi

BUS_BRA_IDS = ["bus_0001-l", "bus_0002-r", "bus_0010-l"]


@pytest.mark.parametrize("image_id", BUS_BRA_IDS)
def test_features_equal_direct_pyradiomics_on_bus_bra(bus_bra_dir, image_id):
    image_path = bus_bra_dir / "Images" / f"{image_id}.png"
    mask_path = bus_bra_dir / "Masks" / f"{image_id.replace('bus_', 'mask_')}.png"

    ours = extract_roi_features(load_roi(image_path, mask_path))
    direct = direct_pyradiomics(image_path, mask_path)

    assert list(ours) == list(direct)
    np.testing.assert_allclose(list(ours.values()), list(direct.values()), rtol=1e-12, atol=0)


def test_default_feature_list_is_2d_with_pyradiomics_names(bus_bra_dir):
    roi = load_roi(bus_bra_dir / "Images" / "bus_0001-l.png", bus_bra_dir / "Masks" / "mask_0001-l.png")
    names = list(extract_roi_features(roi))
    classes = {name.split("_")[1] for name in names}
    assert classes == {"firstorder", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm"}
    assert all(name.startswith("original_") for name in names)
    assert "original_glcm_Contrast" in names
    # PyRadiomics' documented classes: 18 first-order, 10 shape2D of which SphericalDisproportion
    # is deprecated (off by default), 24 GLCM, 16 GLRLM, 16 GLSZM, 14 GLDM, 5 NGTDM: 102 in all,
    # the count method.md gives for the 2D defaults (the paper reports "108").
    counts = pd.Series([name.split("_")[1] for name in names]).value_counts().to_dict()
    assert counts == {"firstorder": 18, "shape2D": 9, "glcm": 24, "glrlm": 16, "glszm": 16, "gldm": 14, "ngtdm": 5}
    assert len(names) == 102


def _roi(image: np.ndarray, mask: np.ndarray) -> RoiImage:
    return RoiImage(image, mask, (1.0, 1.0), "/data/P7/image.png", "/data/P7/mask.png")


def test_flat_roi_is_refused_naming_the_files():
    image = np.full((32, 32), 100, dtype=np.float32)
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[8:20, 8:20] = 1
    with pytest.raises(RadiomicFeatureError, match=r"flat ROI.*/data/P7/image.png.*/data/P7/mask.png"):
        extract_roi_features(_roi(image, mask))


def test_empty_and_single_pixel_masks_are_refused_naming_the_mask():
    image = np.random.default_rng(0).uniform(0, 255, size=(32, 32)).astype(np.float32)
    with pytest.raises(RadiomicFeatureError, match="/data/P7/mask.png"):
        extract_roi_features(_roi(image, np.zeros((32, 32), dtype=np.uint8)))
    single = np.zeros((32, 32), dtype=np.uint8)
    single[5, 5] = 1
    with pytest.raises(RadiomicFeatureError, match="single voxel"):
        extract_roi_features(_roi(image, single))


def test_feature_columns_leave_out_meta_and_provenance():
    frame = pd.DataFrame(
        columns=["roi_id", "patient_id", "label", "image_sha256", "pyradiomics_version",
                 "original_glcm_Contrast", "original_shape2D_Elongation", "wavelet-LLH_firstorder_Mean"]
    )
    assert radiomic_feature_columns(frame) == [
        "original_glcm_Contrast", "original_shape2D_Elongation", "wavelet-LLH_firstorder_Mean"
    ]


def test_names_and_version_known_without_pyradiomics_match_pyradiomics():
    # A cached run recognises feature columns and builds store keys without importing PyRadiomics;
    # what it uses in its place must be what PyRadiomics itself says.
    import radiomics

    from dlradiomics.features.radiomic.extraction import pyradiomics_version
    from dlradiomics.features.radiomic.names import PYRADIOMICS_FEATURE_CLASSES

    assert sorted(PYRADIOMICS_FEATURE_CLASSES) == sorted(radiomics.getFeatureClasses())
    assert pyradiomics_version() == radiomics.__version__

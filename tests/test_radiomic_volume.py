"""Radiomic features of a whole lesion volume (``dimension: 3D``), against IBSI's 3D reference values
and against quantities computed from their definitions on generated volumes.

IBSI digital phantom (../shared/data/ibsi-phantom, 5 x 4 x 4 voxels of 2 mm, bin width 1, no
resampling): tests/data/ibsi_phantom_reference_3d.csv holds the "3D" (GLSZM, NGLDM, NGTDM) and
"3D, averaged" (GLCM, GLRLM) reference values and the mesh volume, transcribed from the IBSI
reference manual (theibsi/ibsi-doc, docs/03_Image_features.rst, rows "dig. phantom"). Where IBSI
prints no tolerance ("—"), the tolerance is half a unit of the third significant digit printed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from dicom_files import write_series
from dlradiomics.features.radiomic import (
    extract_radiomic_features,
    extract_volume_features,
    load_radiomics_params,
    volume_settings,
)
from dlradiomics.features.radiomic.families import FamilySettingsError, FeatureFamilies
from dlradiomics.io import RoiVolume

REFERENCE_3D = pd.read_csv(Path(__file__).with_name("data") / "ibsi_phantom_reference_3d.csv")
IBSI_PARAMS = {
    "setting": {"binWidth": 1, "label": 1, "additionalInfo": False},
    "imageType": {"Original": {}},
    "featureClass": {name: [] for name in ("firstorder", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm")},
}


@pytest.fixture(scope="module")
def phantom_features(ibsi_phantom_dir) -> dict[str, float]:
    image = sitk.ReadImage(str(ibsi_phantom_dir / "phantom.nii.gz"))
    mask = sitk.ReadImage(str(ibsi_phantom_dir / "mask.nii.gz"))
    spacing = tuple(reversed(image.GetSpacing()))
    volume = RoiVolume(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(mask), spacing, "phantom", "mask")
    features = extract_volume_features(volume, IBSI_PARAMS)
    return {name.removeprefix("original_"): value for name, value in features.items()}


def _tolerance(reference) -> float:
    if not math.isnan(reference.tolerance):
        return float(reference.tolerance)
    return 0.5 * 10 ** (math.floor(math.log10(abs(reference.value))) - 2)


@pytest.mark.parametrize("reference", list(REFERENCE_3D.itertuples(index=False)), ids=lambda r: r.pyradiomics_feature)
def test_phantom_feature_matches_ibsi_3d_reference(phantom_features, reference):
    ours = phantom_features[reference.pyradiomics_feature]
    assert abs(ours - reference.value) <= _tolerance(reference), (
        f"{reference.pyradiomics_feature} ({reference.ibsi_feature}, {reference.aggregation}): "
        f"IBSI {reference.value}, dlradiomics {ours:.6g}")


def test_phantom_3d_has_3d_shape_and_no_2d_shape(phantom_features):
    assert "shape_MeshVolume" in phantom_features and "shape_Sphericity" in phantom_features
    assert not any(name.startswith("shape2D_") for name in phantom_features)


def _box_volume(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(100, 20, size=(8, 24, 26)).astype(np.float32)
    lesion = np.zeros(image.shape, np.uint8)
    lesion[2:6, 6:16, 7:19] = 1
    lesion[4, 5:17, 6:20] = 1  # the largest cross-section
    image[lesion > 0] += 60
    return image, lesion


def test_volume_features_describe_the_whole_lesion():
    image, lesion = _box_volume()
    spacing = (2.5, 0.6, 0.7)
    volume = RoiVolume(image, lesion, spacing, "generated", "generated mask")
    features = extract_volume_features(volume, load_radiomics_params())
    # From the definitions: voxel count times voxel volume; the mean of every lesion voxel (not
    # only those of the largest slice).
    assert features["original_shape_VoxelVolume"] == pytest.approx(lesion.sum() * np.prod(spacing))
    assert features["original_firstorder_Mean"] == pytest.approx(float(image[lesion > 0].mean()), rel=1e-6)
    assert features["original_firstorder_Mean"] != pytest.approx(float(image[4][lesion[4] > 0].mean()), rel=1e-4)


def test_3d_peritumoral_ring_is_a_shell_in_millimetres():
    image, lesion = _box_volume(1)
    spacing = (2.5, 0.6, 0.7)
    params = load_radiomics_params(overrides={"dlradiomics": {"peritumoral": {"width_px": 3, "width_mm": 1.5}}})
    features = extract_volume_features(RoiVolume(image, lesion, spacing, "g", "m"), params)
    # The ring from its definition: voxels outside the lesion whose centre lies within 1.5 mm of
    # a lesion voxel's centre (brute force over all pairs).
    centres = np.argwhere(np.ones(image.shape, bool)) * np.asarray(spacing)
    lesion_centres = np.argwhere(lesion > 0) * np.asarray(spacing)
    nearest = np.array([np.sqrt(((lesion_centres - c) ** 2).sum(axis=1)).min() for c in centres])
    ring = (nearest <= 1.5).reshape(image.shape) & (lesion == 0)
    assert features["peri_original_firstorder_Mean"] == pytest.approx(float(image[ring].mean()), rel=1e-6)
    assert not any(name.startswith("peri_original_shape") for name in features)


def test_3d_log_and_wavelet_use_pyradiomics_3d_filters():
    image, lesion = _box_volume(2)
    params = load_radiomics_params(overrides={"dlradiomics": {"log": {"sigmas": [1.0]}, "wavelet": {"name": "haar"}}})
    features = extract_volume_features(RoiVolume(image, lesion, (2.5, 0.6, 0.7), "g", "m"), params)
    image_types = {name.split("_")[0] for name in features}
    assert "log-sigma-1-0-mm-3D" in image_types
    assert {f"wavelet-{a}{b}{c}" for a in "LH" for b in "LH" for c in "LH"} <= image_types
    # A family's own bin width is PyRadiomics' per-image-type setting in 3D.
    with_bins = load_radiomics_params(overrides={"dlradiomics": {"log": {"sigmas": [1.0], "bin_width": 5}}})
    assert volume_settings(with_bins)["imageType"]["LoG"] == {"sigma": [1.0], "binWidth": 5}
    assert volume_settings(with_bins)["setting"]["force2D"] is False


def test_dimension_setting_is_validated():
    assert FeatureFamilies.from_params({"dlradiomics": {"dimension": "3d"}}).dimension_for("US") == "3D"
    families = FeatureFamilies.from_params({"dlradiomics": {"dimension": {"MRI": "3D"}}})
    assert families.dimension_for(" mri ") == "3D" and families.dimension_for("US") == "2D"
    with pytest.raises(FamilySettingsError, match="dimension.MRI: '4D' is not one of 2D, 3D"):
        FeatureFamilies.from_params({"dlradiomics": {"dimension": {"MRI": "4D"}}})


def test_cohort_extraction_in_3d_from_a_dicom_series(tmp_path):
    from roi_files import lesion_image, write_png

    image, lesion = _box_volume(3)
    stored = np.clip(image, 0, None).astype(np.uint16)
    spacing = (2.5, 0.6, 0.7)
    write_series(tmp_path / "series", stored, spacing=spacing, origin=(0.0, 0.0, 0.0))
    mask = sitk.GetImageFromArray(lesion)
    mask.SetSpacing((spacing[2], spacing[1], spacing[0]))
    sitk.WriteImage(mask, str(tmp_path / "mask.nrrd"))
    png_image, png_mask = lesion_image()
    rows = pd.DataFrame([
        {"roi_id": "P1/MRI/series", "patient_id": "P1", "modality": "MRI", "image": str(tmp_path / "series"),
         "mask": str(tmp_path / "mask.nrrd"), "label": 1},
        {"roi_id": "P2/MRI/flat", "patient_id": "P2", "modality": "MRI",
         "image": str(write_png(tmp_path / "flat.png", png_image)),
         "mask": str(write_png(tmp_path / "flat_mask.png", png_mask * 255)), "label": 0},
        {"roi_id": "P3/US/us", "patient_id": "P3", "modality": "US",
         "image": str(tmp_path / "flat.png"), "mask": str(tmp_path / "flat_mask.png"), "label": 0},
    ])
    params = {"dlradiomics": {"dimension": {"MRI": "3D"}}}

    result = extract_radiomic_features(rows, tmp_path / "store", params=params, n_jobs=1, progress=False)

    features = result.features.set_index("roi_id")
    assert list(features.index) == ["P1/MRI/series", "P3/US/us"]
    assert features.loc["P1/MRI/series", "original_shape_VoxelVolume"] == pytest.approx(lesion.sum() * np.prod(spacing))
    assert np.isnan(features.loc["P1/MRI/series", "original_shape2D_PixelSurface"])
    assert np.isnan(features.loc["P3/US/us", "original_shape_VoxelVolume"])  # US stays 2D
    failure = result.failures.set_index("roi_id").loc["P2/MRI/flat"]
    assert failure["stage"] == "read" and "features in 3D need a volume" in failure["error"]
    assert result.provenance["feature_families"]["dimension"] == {"MRI": "3D"}

    again = extract_radiomic_features(rows, tmp_path / "store", params=params, n_jobs=1, progress=False)
    assert again.n_computed == 0 and again.n_cached == 2
    in_2d = extract_radiomic_features(rows, tmp_path / "store", params=None, n_jobs=1, progress=False)
    assert in_2d.n_computed == 3  # another dimension is another settings hash: nothing reused


def test_study_file_dimension_reaches_the_parameter_mapping(tmp_path):
    from dlradiomics.study.settings import StudySettings

    settings = StudySettings.from_mapping(
        {"name": "x", "cohort": {"manifest": "m.csv", "modalities": ["US", "MRI"]},
         "radiomics": {"dimension": {"mri": "3d"}}}, base_dir=tmp_path)
    section = settings.radiomics.families_section()
    assert section == {"dimension": {"MRI": "3D"}}
    families = FeatureFamilies.from_params({"dlradiomics": section})
    assert families.dimension_for("MRI") == "3D" and families.dimension_for("US") == "2D"

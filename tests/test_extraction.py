"""Cohort-scale radiomic extraction: provenance, caching, broken cases, PyRadiomics equality, Dask."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image
from radiomics.featureextractor import RadiomicsFeatureExtractor
from pyradiomics_reference import direct_pyradiomics
from synthetic_rois import synthetic_cohort_table, write_manifest_csv, write_roi_pngs

from dlradiomics.cohort import Cohort, read_manifest
from dlradiomics.features.radiomic import (
    FAILURE_COLUMNS,
    META_COLUMNS,
    PROVENANCE_COLUMNS,
    extract_radiomic_features,
)
from dlradiomics.features.radiomic import (
    DEFAULT_PARAMS_PATH,
    load_radiomics_params,
    radiomic_feature_columns,
    settings_sha256,
)


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def synthetic_table(tmp_path_factory) -> pd.DataFrame:
    return synthetic_cohort_table(tmp_path_factory.mktemp("rois"), n_rois=6)


def test_table_has_meta_then_provenance_then_features(synthetic_table, tmp_path):
    result = extract_radiomic_features(synthetic_table, tmp_path / "store", n_jobs=1, progress=False)

    features = result.features
    feature_names = radiomic_feature_columns(features)
    assert list(features.columns) == META_COLUMNS + PROVENANCE_COLUMNS + feature_names
    assert len(feature_names) == result.provenance["n_features"] > 90
    assert features["roi_id"].tolist() == synthetic_table["roi_id"].tolist()
    assert features["image_sha256"].tolist() == [_sha256(path) for path in synthetic_table["image"]]
    assert features["mask_sha256"].tolist() == [_sha256(path) for path in synthetic_table["mask"]]
    assert set(features["settings_sha256"]) == {settings_sha256(load_radiomics_params())}
    assert result.provenance["versions"]["SimpleITK"] == sitk.Version_VersionString()
    assert result.provenance["feature_names"] == feature_names
    assert result.failures.empty and list(result.failures.columns) == FAILURE_COLUMNS


def test_second_run_computes_nothing_and_gives_the_same_table(synthetic_table, tmp_path):
    first = extract_radiomic_features(synthetic_table, tmp_path / "store", n_jobs=2, progress=False)
    second = extract_radiomic_features(synthetic_table, tmp_path / "store", n_jobs=2, progress=False)

    assert (first.n_computed, first.n_cached) == (6, 0)
    assert (second.n_computed, second.n_cached) == (0, 6)
    pd.testing.assert_frame_equal(first.features, second.features)


def test_this_process_and_a_worker_extract_what_one_process_does(synthetic_table, tmp_path):
    # with n_jobs=2 this process extracts beside one worker process (dlradiomics.parallel)
    alone = extract_radiomic_features(synthetic_table, tmp_path / "alone", n_jobs=1, progress=False)
    shared = extract_radiomic_features(synthetic_table, tmp_path / "shared", n_jobs=2, progress=False)
    assert shared.n_computed == alone.n_computed == len(synthetic_table)
    pd.testing.assert_frame_equal(shared.features, alone.features, check_exact=True)


def test_changed_settings_are_computed_afresh(synthetic_table, tmp_path):
    extract_radiomic_features(synthetic_table, tmp_path / "store", n_jobs=1, progress=False)
    rebinned = extract_radiomic_features(
        synthetic_table, tmp_path / "store", params={"setting": {"binWidth": 10}}, n_jobs=1, progress=False
    )
    assert rebinned.n_computed == len(synthetic_table)
    assert set(rebinned.features["settings_sha256"]) != {settings_sha256(load_radiomics_params())}


def test_features_equal_one_slice_volume_pyradiomics_run_directly_on_bus_bra(bus_bra_dir, tmp_path):
    image_ids = ["bus_0001-l", "bus_0003-r", "bus_0012-s", "bus_0020-l"]
    image_ids = [i for i in image_ids if (bus_bra_dir / "Images" / f"{i}.png").exists()][:3]
    manifest = pd.DataFrame(
        {
            "patient_id": [image_id.split("-")[0] for image_id in image_ids],
            "modality": "US",
            "image": [f"Images/{image_id}.png" for image_id in image_ids],
            "mask": [f"Masks/{image_id.replace('bus_', 'mask_')}.png" for image_id in image_ids],
            "label": "benign",
        }
    )
    cohort = Cohort.from_table(manifest, bus_bra_dir)
    result = extract_radiomic_features(cohort, tmp_path / "store", n_jobs=1, progress=False)

    extractor = RadiomicsFeatureExtractor(str(DEFAULT_PARAMS_PATH))
    for row in result.features.itertuples(index=False):
        direct = direct_pyradiomics(row.image, row.mask, extractor)
        ours = result.features.loc[result.features["roi_id"] == row.roi_id, list(direct)].iloc[0]
        np.testing.assert_allclose(ours.to_numpy(dtype=float), list(direct.values()), rtol=1e-12, atol=0)
    assert len(result.features) == len(image_ids)


def _broken_manifest(folder: Path) -> Path:
    """Two good rows and one of each broken kind; returns the manifest CSV."""
    good = synthetic_cohort_table(folder, n_rois=2)
    rows = good.to_dict("records")

    def row(patient_id, image, mask, label="benign"):
        return {"patient_id": patient_id, "modality": "US", "image": str(image), "mask": str(mask), "label": label}

    image, mask = write_roi_pngs(folder, "wrong_size", seed=10)
    Image.fromarray(np.zeros((40, 30), dtype=np.uint8)).save(mask)  # the image is 64 x 64
    rows.append(row("WRONGSIZE", image, mask))

    image, mask = write_roi_pngs(folder, "empty", seed=11)
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(mask)
    rows.append(row("EMPTY", image, mask))

    image, mask = write_roi_pngs(folder, "corrupt", seed=12)
    image.write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG any more")
    rows.append(row("CORRUPT", image, mask))

    image, mask = write_roi_pngs(folder, "flat", seed=13)
    Image.fromarray(np.full((64, 64), 90, dtype=np.uint8)).save(image)
    rows.append(row("FLAT", image, mask))

    rows.append(row("MISSING", folder / "no_such_image.png", mask))
    image, mask = write_roi_pngs(folder, "unknown_label", seed=14)
    rows.append(row("BADLABEL", image, mask, label="probably"))
    return write_manifest_csv(pd.DataFrame(rows), folder / "manifest.csv")


def test_broken_rows_are_each_reported_and_good_rows_still_extracted(tmp_path):
    cohort = read_manifest(_broken_manifest(tmp_path / "cohort"))
    result = extract_radiomic_features(cohort, tmp_path / "store", n_jobs=2, progress=False)

    assert result.features["patient_id"].tolist() == ["P000", "P000"]
    failures = result.failures.set_index("patient_id")
    assert set(failures.index) == {"WRONGSIZE", "EMPTY", "CORRUPT", "FLAT", "MISSING", "BADLABEL"}
    expectations = {
        "WRONGSIZE": ("read", "wrong_size_mask.png"),
        "EMPTY": ("read", "empty_mask.png"),
        "CORRUPT": ("read", "corrupt.png"),
        "FLAT": ("features", "flat.png"),
        "MISSING": ("manifest", "no_such_image.png"),
        "BADLABEL": ("manifest", "probably"),
    }
    for patient_id, (stage, named) in expectations.items():
        assert failures.loc[patient_id, "stage"] == stage, failures.loc[patient_id, "error"]
        assert named in failures.loc[patient_id, "error"], failures.loc[patient_id, "error"]
    assert "flat ROI" in failures.loc["FLAT", "error"]
    assert "empty" in failures.loc["EMPTY", "error"]


def test_strict_mode_raises_after_extracting_the_rest(tmp_path):
    cohort = read_manifest(_broken_manifest(tmp_path / "cohort"))
    with pytest.raises(RuntimeError, match="6 case"):
        extract_radiomic_features(cohort, tmp_path / "store", n_jobs=1, progress=False, strict=True)
    # The good rows were computed and stored before the error.
    again = extract_radiomic_features(cohort, tmp_path / "store", n_jobs=1, progress=False)
    assert (again.n_computed, again.n_cached) == (0, 2)


def test_dask_cluster_writes_the_same_results_into_the_same_store(synthetic_table, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = extract_radiomic_features(synthetic_table, tmp_path / "local-store", n_jobs=1, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        on_dask = extract_radiomic_features(synthetic_table, tmp_path / "dask-store", scheduler=client, progress=False)
        by_address = extract_radiomic_features(
            synthetic_table, tmp_path / "dask-store", scheduler=cluster.scheduler_address, progress=False
        )

    assert on_dask.n_computed == len(synthetic_table)
    assert by_address.n_cached == len(synthetic_table)
    pd.testing.assert_frame_equal(local.features, on_dask.features)
    # A local run over the store the cluster wrote finds everything there.
    reused = extract_radiomic_features(synthetic_table, tmp_path / "dask-store", n_jobs=1, progress=False)
    assert reused.n_computed == 0


def test_a_table_row_with_a_missing_mask_is_a_read_failure_naming_it(synthetic_table, tmp_path):
    table = synthetic_table.copy()
    table.loc[1, "mask"] = str(tmp_path / "gone_mask.png")
    result = extract_radiomic_features(table, tmp_path / "store", n_jobs=1, progress=False)

    assert result.failures["roi_id"].tolist() == [table.loc[1, "roi_id"]]
    assert result.failures.loc[0, "stage"] == "read"
    assert "gone_mask.png" in result.failures.loc[0, "error"]
    assert len(result.features) == len(table) - 1


def test_invalid_arguments_are_refused_before_any_work(synthetic_table, tmp_path):
    with pytest.raises(ValueError, match="n_jobs"):
        extract_radiomic_features(synthetic_table, tmp_path / "store", n_jobs=0)
    with pytest.raises(ValueError, match="label"):
        extract_radiomic_features(synthetic_table.drop(columns="label"), tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_a_corrupt_store_table_is_recomputed_and_logged(synthetic_table, tmp_path, caplog):
    first = extract_radiomic_features(synthetic_table, tmp_path / "store", n_jobs=1, progress=False)
    (table,) = (tmp_path / "store" / "radiomic").glob("table-*.parquet")
    table.write_bytes(table.read_bytes()[:100])  # truncated, as a full disk or a bad copy leaves it

    again = extract_radiomic_features(synthetic_table, tmp_path / "store", n_jobs=1, progress=False)

    assert (again.n_computed, again.n_cached) == (len(synthetic_table), 0)
    assert "unreadable" in caplog.text and table.name in caplog.text
    pd.testing.assert_frame_equal(first.features, again.features)


def test_unchanged_files_are_hashed_once_and_a_changed_one_again(synthetic_table, tmp_path):
    table = synthetic_table.copy()
    for column in ("image", "mask"):
        table[column] = [shutil.copy(path, tmp_path / f"{column}{index}.png") for index, path in enumerate(table[column])]
    an_hour_ago = time.time() - 3600
    for path in [*table["image"], *table["mask"]]:
        os.utime(path, (an_hour_ago, an_hour_ago))  # older than the "racy" window of the hash cache

    first = extract_radiomic_features(table, tmp_path / "store", n_jobs=1, progress=False)
    second = extract_radiomic_features(table, tmp_path / "store", n_jobs=1, progress=False)
    Image.fromarray(np.full((64, 64), 7, dtype=np.uint8) + np.eye(64, dtype=np.uint8) * 90).save(table.loc[0, "image"])
    os.utime(table.loc[0, "image"], (an_hour_ago + 60, an_hour_ago + 60))
    third = extract_radiomic_features(table, tmp_path / "store", n_jobs=1, progress=False)

    assert first.provenance["n_files_hashed"] == 2 * len(table)
    assert (second.provenance["n_files_hashed"], second.n_computed) == (0, 0)
    assert (third.provenance["n_files_hashed"], third.n_computed) == (1, 1)


def test_a_16_bit_copy_gives_the_same_features_and_says_how_it_was_stored(synthetic_table, tmp_path):
    copy = synthetic_table.copy()
    copy["image"] = [str(tmp_path / f"sixteen{index}.png") for index in range(len(copy))]
    for original, sixteen in zip(synthetic_table["image"], copy["image"]):
        Image.fromarray(np.asarray(Image.open(original)).astype(np.uint16) * 257).save(sixteen)

    eight = extract_radiomic_features(synthetic_table, tmp_path / "store", n_jobs=1, progress=False)
    wide = extract_radiomic_features(copy, tmp_path / "store", n_jobs=1, progress=False)

    names = radiomic_feature_columns(eight.features)
    pd.testing.assert_frame_equal(eight.features[names], wide.features[names])
    assert set(eight.intensity_profiles["dtype"]) == {"uint8"} and set(wide.intensity_profiles["bit_depth"]) == {16}
    profile_columns = ["min", "max", "p0.5", "p1", "p5", "p50", "p95", "p99", "p99.5"]
    pd.testing.assert_frame_equal(eight.intensity_profiles[profile_columns], wide.intensity_profiles[profile_columns])
    assert eight.provenance["intensity_convention"] == "raster-on-8-bit-scale"

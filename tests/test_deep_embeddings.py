"""Cohort embeddings: content, order, caching in the feature store, failures kept apart."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from dlradiomics.cohort import Cohort
from dlradiomics.features.deep.backbones import create_backbone
from dlradiomics.features.deep.embeddings import (
    META_COLUMNS,
    STORE_COLUMN,
    compute_embeddings,
    embedding_failures,
    embedding_namespace,
    roi_cache_key,
)
from dlradiomics.features.deep.preprocessing import DEFAULT_MARGIN, CropSettings, prepare_roi
from dlradiomics.store import FeatureStore
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _write_roi(folder, stem, seed, empty_mask=False):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(60, 80), dtype=np.uint8)
    mask = np.zeros((60, 80), dtype=np.uint8)
    if not empty_mask:
        mask[15 + seed % 10:40, 20:50 + seed] = 255
    image_path, mask_path = folder / f"{stem}.png", folder / f"{stem}_mask.png"
    Image.fromarray(image).save(image_path)
    Image.fromarray(mask).save(mask_path)
    return str(image_path), str(mask_path)


def _table(folder, n_rois=4):
    rows = []
    for index in range(n_rois):
        image, mask = _write_roi(folder, f"img{index}", seed=index)
        rows.append({"roi_id": f"P{index // 2}/US/img{index}", "patient_id": f"P{index // 2}", "modality": "US",
                     "image": image, "mask": mask, "label": (index // 2) % 2})
    return pd.DataFrame(rows)


class _ForwardCounter:
    def __init__(self, module):
        self.images = 0
        module.register_forward_hook(self)

    def __call__(self, module, inputs, output):
        self.images += inputs[0].shape[0]


@pytest.fixture()
def backbone():
    return create_backbone("efficientnet_lite0", None)


def test_embeddings_match_the_backbone_on_the_prepared_crop(tmp_path, backbone):
    table = _table(tmp_path)
    result = compute_embeddings(table, backbone, batch_size=3, device="cpu")
    assert list(result.columns[:6]) == META_COLUMNS
    assert result.shape == (4, 6 + 1280)
    assert result["roi_id"].tolist() == table["roi_id"].tolist()
    assert result.columns[6] == "deep_0000" and result.columns[-1] == "deep_1279"

    image = np.asarray(Image.open(table.loc[2, "image"]), dtype=np.float32)
    mask = (np.asarray(Image.open(table.loc[2, "mask"])) > 0).astype(np.uint8)
    prepared = prepare_roi(image, mask, input_size=224, mean=backbone.mean, std=backbone.std,
                           settings=CropSettings())
    with torch.inference_mode():
        expected = backbone.model(prepared.tensor[None])[0].numpy()
    np.testing.assert_allclose(result.iloc[2, 6:].to_numpy(dtype=np.float32), expected, rtol=1e-4, atol=1e-5)


def test_second_call_reads_the_store_and_runs_no_network(tmp_path, backbone, monkeypatch):
    table = _table(tmp_path)
    for path in tmp_path.glob("*.png"):  # files older than the hash memo's racy-write window
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    counter = _ForwardCounter(backbone.model)
    store_dir = tmp_path / "store"
    first = compute_embeddings(Cohort.from_table(table), backbone, store_dir=store_dir, device="cpu")
    assert counter.images == 4
    assert len(FeatureStore(store_dir).keys(embedding_namespace(backbone))) == 4
    # the embeddings are rows of one consolidated table, and the files' hashes are remembered
    namespace_folder = store_dir / embedding_namespace(backbone)
    assert [path.name.startswith("table-") for path in namespace_folder.rglob("*.parquet")] == [True]
    with monkeypatch.context() as patched:
        patched.setattr("dlradiomics.io.hashing.sha256_file", _no_hashing)
        second = compute_embeddings(Cohort.from_table(table), backbone, store_dir=store_dir, device="cpu")
    assert counter.images == 4
    pd.testing.assert_frame_equal(first, second)

    # Another preprocessing setting is another key: only then is the network run again.
    compute_embeddings(table, backbone, store_dir=store_dir, margin=0.3, device="cpu")
    assert counter.images == 8


def _no_hashing(path):
    raise AssertionError(f"{path} was hashed again")


def test_embeddings_stored_one_file_per_roi_are_read_and_copied_into_rows(tmp_path, backbone):
    # Earlier versions stored each embedding as its own Parquet file: those stores keep working.
    table = _table(tmp_path)
    store_dir = tmp_path / "store"
    first = compute_embeddings(table, backbone, store_dir=tmp_path / "fresh", device="cpu")
    legacy = FeatureStore(store_dir)
    for roi in first.itertuples():
        key = roi_cache_key(table.iloc[roi.Index], backbone, CropSettings(margin=DEFAULT_MARGIN), {})
        legacy.put(embedding_namespace(backbone), key,
                   pd.DataFrame({STORE_COLUMN: [first.filter(like="deep_").iloc[roi.Index].to_numpy(np.float32)]}))
    counter = _ForwardCounter(backbone.model)
    again = compute_embeddings(table, backbone, store_dir=store_dir, device="cpu")
    assert counter.images == 0
    pd.testing.assert_frame_equal(first, again)
    rows = FeatureStore(store_dir).get_rows(embedding_namespace(backbone))
    assert len(rows) == 4


def test_unusable_rois_are_reported_by_patient_and_file_and_the_rest_computed(tmp_path, backbone):
    table = _table(tmp_path, n_rois=3)
    empty_image, empty_mask = _write_roi(tmp_path, "blank", seed=9, empty_mask=True)
    table.loc[len(table)] = {"roi_id": "P7/US/blank", "patient_id": "P7", "modality": "US",
                             "image": empty_image, "mask": empty_mask, "label": 0}
    table.loc[len(table)] = {"roi_id": "P8/US/gone", "patient_id": "P8", "modality": "US",
                             "image": str(tmp_path / "gone.png"), "mask": empty_mask, "label": 1}
    result = compute_embeddings(table, backbone, store_dir=tmp_path / "store", device="cpu")
    assert result["roi_id"].tolist() == table["roi_id"].tolist()[:3]
    failures = embedding_failures(result).set_index("roi_id")
    assert set(failures.index) == {"P7/US/blank", "P8/US/gone"}
    assert failures.loc["P7/US/blank", "patient_id"] == "P7"
    assert "empty" in failures.loc["P7/US/blank", "error"]
    assert "gone.png" in failures.loc["P8/US/gone", "error"]
    assert failures.loc["P8/US/gone", "stage"] == "read"
    assert failures.loc["P7/US/blank", "stage"] == "read"  # an empty mask is refused as it is read


def test_crops_are_saved_for_inspection(tmp_path, backbone):
    table = _table(tmp_path, n_rois=2)
    compute_embeddings(table, backbone, crops_dir=tmp_path / "crops", device="cpu")
    saved = sorted(path.name for path in (tmp_path / "crops").glob("*.png"))
    assert saved == ["P0__US__img0.png", "P0__US__img1.png"]
    assert Image.open(tmp_path / "crops" / saved[0]).size == (224, 224)


def test_result_writes_to_parquet_as_it_is(tmp_path, backbone):
    result = compute_embeddings(_table(tmp_path, n_rois=2), backbone, device="cpu")
    result.to_parquet(tmp_path / "embeddings.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "embeddings.parquet"), result)


def test_table_without_the_meta_columns_is_refused(tmp_path, backbone):
    with pytest.raises(ValueError, match="patient_id"):
        compute_embeddings(pd.DataFrame({"image": ["a.png"]}), backbone)


def test_real_bus_bra_rois_embed_without_failures(bus_bra_dir):
    from dlradiomics.cohort.loaders import bus_bra_manifest

    cohort = Cohort.from_table(bus_bra_manifest(bus_bra_dir), bus_bra_dir)
    subset = cohort.table.head(4)
    result = compute_embeddings(subset, "efficientnet_lite0", "imagenet", batch_size=2, device="cpu")
    assert embedding_failures(result).empty
    assert result["roi_id"].tolist() == subset["roi_id"].tolist()
    features = result.filter(like="deep_").to_numpy()
    assert features.shape == (4, 1280) and np.isfinite(features).all()
    # Different lesions give different embeddings (a constant output would mean a broken crop).
    assert np.linalg.norm(features[0] - features[2]) > 1e-3 * np.linalg.norm(features[0])


def test_backbone_identity_is_what_the_registry_builds():
    from dlradiomics.features.deep.backbones import _registry
    from dlradiomics.features.deep.identity import backbone_identity
    from dlradiomics.features.deep.weights import torchvision_weights_member

    registry = _registry()
    for name, spec in registry.items():
        identity = backbone_identity(name, "imagenet")
        assert (identity.embedding_dim, identity.input_size, identity.mean, identity.std) == (
            spec.embedding_dim, spec.input_size, spec.mean, spec.std), name
        if spec.torchvision_imagenet:  # the id create_backbone gives torchvision's checkpoints
            assert identity.weights_id == f"imagenet-{torchvision_weights_member(name).name.lower()}", name
    for weights, seed in (("imagenet", 0), (None, 4)):
        built = create_backbone("efficientnet_lite0", weights, seed=seed)
        identity = backbone_identity("efficientnet_lite0", weights, seed=seed)
        assert (built.name, built.weights_id, built.embedding_dim, built.input_size, built.mean, built.std) == (
            identity.name, identity.weights_id, identity.embedding_dim, identity.input_size, identity.mean,
            identity.std)


def test_a_fully_cached_call_by_name_builds_no_network_and_imports_no_torch(tmp_path):
    import subprocess
    import sys

    table = _table(tmp_path)
    store_dir = tmp_path / "store"
    first = compute_embeddings(table, "efficientnet_lite0", None, store_dir=store_dir, device="cpu")
    table.to_csv(tmp_path / "table.csv", index=False)
    # A fresh interpreter, as a re-run of a study starts.
    script = (
        "import sys\nimport pandas as pd\nfrom dlradiomics.features.deep.embeddings import compute_embeddings\n"
        f"result = compute_embeddings(pd.read_csv({str(tmp_path / 'table.csv')!r}), 'efficientnet_lite0', None, "
        f"store_dir={str(store_dir)!r})\n"
        f"result.to_parquet({str(tmp_path / 'again.parquet')!r})\n"
        "print('imported:', sorted(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})
    assert finished.returncode == 0, finished.stderr
    assert "imported: []" in finished.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "again.parquet"), first)

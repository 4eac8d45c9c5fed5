"""FeatureStore: content keys, round trips, atomic writes."""

from __future__ import annotations

import pandas as pd

from dlradiomics.store import FeatureStore, content_key


def test_content_key_ignores_key_order_and_changes_with_content():
    key = content_key({"image": "a" * 64, "mask": "b" * 64, "settings": "c"})
    assert key == content_key({"settings": "c", "mask": "b" * 64, "image": "a" * 64})
    assert key != content_key({"image": "a" * 64, "mask": "b" * 64, "settings": "d"})
    assert len(key) == 64


def test_put_then_get_round_trips_and_lists_keys(tmp_path):
    store = FeatureStore(tmp_path / "store")
    frame = pd.DataFrame({"image_sha256": ["x"], "original_glcm_Contrast": [1.25]})
    key = content_key({"roi": 1})

    assert store.get("radiomic", key) is None
    assert ("radiomic", key) not in store
    store.put("radiomic", key, frame)

    assert ("radiomic", key) in store
    pd.testing.assert_frame_equal(store.get("radiomic", key), frame)
    assert store.keys("radiomic") == [key]
    assert store.keys("deep/resnet50") == []


def test_put_leaves_no_temporary_files(tmp_path):
    store = FeatureStore(tmp_path)
    for index in range(3):
        store.put("radiomic", content_key({"roi": index}), pd.DataFrame({"value": [index]}))
    leftovers = [path.name for path in tmp_path.rglob(".tmp-*")]
    assert leftovers == []
    assert len(store.keys("radiomic")) == 3


def test_a_write_killed_midway_is_not_listed_as_a_key(tmp_path):
    store = FeatureStore(tmp_path)
    key = content_key({"roi": "complete"})
    store.put("radiomic", key, pd.DataFrame({"value": [1]}))
    # What a writer killed between writing its temporary file and renaming it leaves behind.
    (store.path("radiomic", key).parent / ".tmp-abc123.parquet").write_bytes(b"PAR1 partial")
    assert store.keys("radiomic") == [key]


def test_put_row_and_get_row_round_trip_and_read_as_a_frame(tmp_path):
    store = FeatureStore(tmp_path)
    row = {"image_sha256": "ab" * 32, "original_firstorder_Mean": 71.5, "original_glcm_Contrast": 3.25}
    key = content_key({"roi": "row"})

    assert store.get_row("radiomic", key) is None
    store.put_row("radiomic", key, row)

    assert store.get_row("radiomic", key) == row
    assert list(store.get_row("radiomic", key)) == list(row)
    pd.testing.assert_frame_equal(store.get("radiomic", key), pd.DataFrame([row]))

"""FeatureStore: content keys, round trips, atomic writes."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

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


def _row(index: int) -> dict:
    return {"image_sha256": f"{index:064d}", "original_glcm_Contrast": index + 0.25}


def test_rows_of_several_writers_consolidate_into_one_table(tmp_path):
    first, second = FeatureStore(tmp_path), FeatureStore(tmp_path)
    for index in range(3):
        first.put_row("radiomic", f"a{index}", _row(index))
        second.put_row("radiomic", f"b{index}", _row(10 + index))
    reader = FeatureStore(tmp_path)
    assert set(reader.get_rows("radiomic")) == {"a0", "a1", "a2", "b0", "b1", "b2"}  # readable while written
    assert reader.consolidate("radiomic") == 0  # both writers live: nothing may be merged yet
    first.close()
    second.close()
    assert reader.consolidate("radiomic") == 2
    files = sorted(path.name for path in (tmp_path / "radiomic").iterdir() if not path.name.startswith("."))
    assert len(files) == 1 and files[0].startswith("table-") and files[0].endswith(".parquet")
    assert FeatureStore(tmp_path).get_rows("radiomic", ["a1", "b2", "zz"]) == {"a1": _row(1), "b2": _row(12)}


def test_a_log_cut_short_by_a_killed_writer_keeps_its_complete_rows(tmp_path, caplog):
    writer = FeatureStore(tmp_path)
    for index in range(3):
        writer.put_row("radiomic", f"k{index}", _row(index))
    writer.close()
    (log,) = (tmp_path / "radiomic").glob("log-*.arrows")
    log.write_bytes(log.read_bytes()[:-40])  # the last record half written, as a kill leaves it
    rows = FeatureStore(tmp_path).get_rows("radiomic")
    assert set(rows) == {"k0", "k1"}
    assert "partial record" in caplog.text and log.name in caplog.text


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_table_is_set_aside_and_logged_never_fatal(tmp_path, caplog, damage):
    writer = FeatureStore(tmp_path)
    for index in range(4):
        writer.put_row("radiomic", f"k{index}", _row(index))
    writer.close()
    writer.consolidate("radiomic")
    (table,) = (tmp_path / "radiomic").glob("table-*.parquet")
    content = table.read_bytes()
    table.write_bytes(content[: len(content) // 2] if damage == "truncate" else b"PAR1" + b"\x00" * 300)

    store = FeatureStore(tmp_path)
    assert store.get_rows("radiomic") == {}
    assert "unreadable" in caplog.text and table.name in caplog.text
    assert (table.parent / (table.name + ".corrupt")).exists() and not table.exists()
    store.put_row("radiomic", "k0", _row(0))  # computed again, stored again
    store.close()
    assert FeatureStore(tmp_path).get_rows("radiomic") == {"k0": _row(0)}


def _write_rows(root: str, prefix: str, count: int) -> None:
    store = FeatureStore(root)
    for index in range(count):
        store.put_row("radiomic", f"{prefix}{index}", _row(index))
    store.close()


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_rows, args=(str(tmp_path), prefix, 40)) for prefix in "pqr"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    store = FeatureStore(tmp_path)
    assert store.consolidate("radiomic") == 3
    rows = FeatureStore(tmp_path).get_rows("radiomic")
    assert len(rows) == 120 and rows["q39"] == _row(39)


def test_consolidation_merges_a_schema_with_its_new_rows_and_leaves_other_schemas_alone(tmp_path):
    store = FeatureStore(tmp_path)
    store.put_row("radiomic", "narrow", {"a": 1.0})
    store.put_row("radiomic", "wide", {"a": 1.0, "b": 2.0})
    store.close()
    store.consolidate("radiomic")
    tables = set((tmp_path / "radiomic").glob("table-*.parquet"))
    assert len(tables) == 2  # one per schema
    wide_table = next(path for path in tables if "b" in pq.read_schema(path).names)

    later = FeatureStore(tmp_path)
    later.put_row("radiomic", "narrow2", {"a": 3.0})
    later.close()
    assert later.consolidate("radiomic") == 2  # the narrow table and the new log
    assert wide_table.exists()  # untouched: nothing new of its schema
    assert FeatureStore(tmp_path).get_rows("radiomic") == {"narrow": {"a": 1.0}, "narrow2": {"a": 3.0},
                                                           "wide": {"a": 1.0, "b": 2.0}}

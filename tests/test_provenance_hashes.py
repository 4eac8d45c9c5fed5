"""A run's input_hashes.csv: the SHA-256 of every input file's bytes, hashed through the store's file
hash cache (a re-run re-reads only files that changed), and what that cache promises."""

from __future__ import annotations

import hashlib
import os
import time

import pandas as pd

from dlradiomics.io import FileHashCache
from dlradiomics.study.run_folder import create_run_folder, write_provenance

AN_HOUR_AGO_NS = time.time_ns() - 3_600_000_000_000


def _files(folder, n=3):
    """n image/mask pairs of arbitrary bytes (provenance never decodes them), last modified an hour ago."""
    rows = []
    for i in range(n):
        image, mask = folder / f"image{i}.png", folder / f"mask{i}.png"
        image.write_bytes(os.urandom(200))
        mask.write_bytes(os.urandom(150))
        for path in (image, mask):
            os.utime(path, ns=(AN_HOUR_AGO_NS, AN_HOUR_AGO_NS))
        rows.append({"roi_id": f"P{i}/US/image{i}", "image": str(image), "mask": str(mask)})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return pd.DataFrame(rows), manifest


def _provenance(tmp_path, table, manifest, hashes) -> pd.DataFrame:
    run = create_run_folder(tmp_path / "out")
    write_provenance(run, {"name": "t"}, table, manifest, versions={}, hashes=hashes)
    return pd.read_csv(run.root / "input_hashes.csv")


def _true_sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_input_hashes_are_content_hashes_and_only_changed_files_are_hashed_again(tmp_path):
    table, manifest = _files(tmp_path)
    cache_file = tmp_path / "file-hashes.json"
    first_cache = FileHashCache(cache_file)
    first = _provenance(tmp_path, table, manifest, first_cache)
    first_cache.save()
    assert first_cache.n_hashed == 6
    assert len(first) == 7 and first.loc[0, "roi_id"] == "(manifest)"
    assert all(row.sha256 == _true_sha256(row.file) for row in first.itertuples())

    second_cache = FileHashCache(cache_file)
    second = _provenance(tmp_path, table, manifest, second_cache)
    assert second_cache.n_hashed == 0
    pd.testing.assert_frame_equal(second, first)

    # An image rewritten with other bytes of the same size (an ordinary write: a new modification time).
    changed = table.loc[1, "image"]
    with open(changed, "r+b") as stream:
        stream.write(os.urandom(200))
    later = AN_HOUR_AGO_NS + 60_000_000_000
    os.utime(changed, ns=(later, later))
    third_cache = FileHashCache(cache_file)
    third = _provenance(tmp_path, table, manifest, third_cache)
    assert third_cache.n_hashed == 1
    assert third.loc[third["file"] == changed, "sha256"].item() == _true_sha256(changed)
    assert third.loc[third["file"] == changed, "sha256"].item() != first.loc[first["file"] == changed, "sha256"].item()
    assert all(row.sha256 == _true_sha256(row.file) for row in third.itertuples())


def test_a_file_rewritten_within_its_timestamp_tick_is_never_served_a_stale_hash(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"A" * 100)
    cache = FileHashCache(tmp_path / "file-hashes.json")
    assert cache.sha256(path) == hashlib.sha256(b"A" * 100).hexdigest()
    stamp = os.stat(path).st_mtime_ns
    # Same file (inode), same size, same modification time: invisible to a size-and-time check.
    with open(path, "r+b") as stream:
        stream.write(b"B" * 100)
    os.utime(path, ns=(stamp, stamp))
    assert cache.sha256(path) == hashlib.sha256(b"B" * 100).hexdigest()
    cache.save()
    assert FileHashCache(tmp_path / "file-hashes.json").sha256(path) == hashlib.sha256(b"B" * 100).hexdigest()

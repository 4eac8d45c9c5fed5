"""Data QA on generated cases that trip every check, and the `dlradiomics qa` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlradiomics.cohort import read_manifest
from dlradiomics.cohort.qa import QA_FLAGS, run_qa, write_qa_report
from PIL import Image

from roi_files import lesion_image, write_png


def _mask(shape=(40, 50), *boxes):
    mask = np.zeros(shape, dtype=np.uint8)
    for r0, r1, c0, c1 in boxes:
        mask[r0:r1, c0:c1] = 255
    return mask


@pytest.fixture()
def qa_cohort(tmp_path):
    """One case per check, plus a clean case and an image shared by two patients with two labels."""
    cases = {}

    def case(name, image, mask, patient=None, label="benign"):
        write_png(tmp_path / f"{name}.png", image)
        write_png(tmp_path / f"{name}_mask.png", mask)
        cases[name] = (patient or name, label)

    def texture(seed):
        return np.random.default_rng(seed).integers(0, 255, size=(40, 50), dtype=np.uint8)

    case("clean", lesion_image(seed=1)[0], _mask((40, 50), (10, 25, 15, 35)))
    case("tiny", texture(2), _mask((40, 50), (20, 23, 20, 23)))
    case("split", texture(3), _mask((40, 50), (5, 12, 5, 12), (25, 35, 30, 45)))
    case("border", texture(4), _mask((40, 50), (0, 10, 10, 20)))
    flat = texture(6)
    flat[10:25, 15:35] = 77
    case("flat_roi", flat, _mask((40, 50), (10, 25, 15, 35)))
    case("flat_image", np.full((40, 50), 9, np.uint8), _mask((40, 50), (10, 25, 15, 35)))
    case("empty", texture(7), _mask((40, 50)))
    case("wrong_size", texture(8), _mask((20, 20), (5, 10, 5, 10)))
    # The same picture under two patients with different labels (the second as a TIFF copy).
    shared = texture(9)
    case("dup_a", shared, _mask((40, 50), (10, 25, 15, 35)), patient="P-dup-1", label="benign")
    write_png(tmp_path / "dup_b.tif", shared)
    write_png(tmp_path / "dup_b_mask.png", _mask((40, 50), (10, 25, 15, 35)))
    cases["dup_b"] = ("P-dup-2", "malignant")
    # A near-duplicate: the same picture slightly brightened, under a third patient.
    case("near", np.clip(shared.astype(int) + 3, 0, 255).astype(np.uint8), _mask((40, 50), (10, 25, 15, 35)),
         patient="P-near", label="malignant")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    write_png(tmp_path / "corrupt_mask.png", _mask((40, 50), (10, 25, 15, 35)))
    cases["corrupt"] = ("corrupt", "benign")

    lines = ["patient_id,modality,image,mask,label"]
    for name, (patient, label) in cases.items():
        image = "dup_b.tif" if name == "dup_b" else f"{name}.png"
        lines.append(f"{patient},US,{image},{name}_mask.png,{label}")
    lines.append("ghost,US,ghost.png,ghost_mask.png,benign")  # a manifest problem: missing files
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def _flags(table):
    return {row.roi_id.split("/")[-1]: set(filter(None, row.flags.split(";"))) for row in table.itertuples()}


def test_every_check_fires_on_its_case_and_only_there(qa_cohort):
    cohort = read_manifest(qa_cohort / "manifest.csv")
    table, summary = run_qa(cohort)
    flags = _flags(table)
    assert flags["clean"] == set()
    assert flags["tiny"] == {"tiny_mask"}
    assert flags["split"] == {"several_components"}
    assert flags["border"] == {"touches_border"}
    assert flags["flat_roi"] == {"flat_roi"}
    assert "flat_image" in flags["flat_image"] and "flat_roi" in flags["flat_image"]
    assert flags["empty"] == {"empty_mask"}
    assert flags["wrong_size"] == {"size_mismatch"}
    assert flags["corrupt"] == {"unreadable_image"}
    duplicate = {"exact_duplicate", "duplicate_across_patients", "duplicate_across_labels"}
    assert duplicate <= flags["dup_a"] and duplicate <= flags["dup_b"]
    assert {"near_duplicate_across_patients", "near_duplicate_across_labels"} <= flags["near"]

    rows = table.set_index(table["roi_id"].str.split("/").str[-1])
    assert rows.loc["split", "components"] == 2
    assert rows.loc["tiny", "mask_pixels"] == 9
    assert rows.loc["wrong_size", "mask_rows"] == 20 and rows.loc["wrong_size", "image_rows"] == 40
    assert "mask size (20, 20) differs" in rows.loc["wrong_size", "error"]
    assert "corrupt.png" in rows.loc["corrupt", "error"]
    assert rows.loc["dup_a", "exact_duplicates"] == "P-dup-2/US/dup_b"
    assert rows.loc["clean", "roi_std"] > 0
    assert set(table["flags"].str.split(";").explode()) - {""} <= set(QA_FLAGS)
    # The manifest's missing-file row is reported in the summary, not checked.
    assert len(summary.manifest_problems) == 2 and summary.n_rows == len(table) == 12
    assert summary.flag_counts["exact_duplicate"] == 2
    pairs = summary.duplicate_pairs
    exact = pairs[pairs["kind"] == "exact"]
    assert len(exact) == 1 and not exact["same_patient"].iloc[0] and not exact["same_label"].iloc[0]


def test_near_duplicate_threshold_decides_which_pairs_count(qa_cohort):
    cohort = read_manifest(qa_cohort / "manifest.csv")
    _, loose = run_qa(cohort, near_duplicate_distance=64)
    near = loose.duplicate_pairs[loose.duplicate_pairs["kind"] == "near"]
    # With every distance allowed, every pair of the 11 readable images is listed once as "near",
    # except dup_a / dup_b, which are listed as one exact pair instead.
    assert len(near) == 11 * 10 // 2 - 1
    brightened = near[(near["roi_b"] == "P-near/US/near") | (near["roi_a"] == "P-near/US/near")]
    distance_to_copy = brightened.loc[brightened["roi_a"].str.contains("dup_a"), "distance"].iloc[0]
    assert distance_to_copy <= 4
    _, strict = run_qa(cohort, near_duplicate_distance=distance_to_copy - 1 if distance_to_copy else 0)
    kept = strict.duplicate_pairs
    assert (kept.loc[kept["kind"] == "near", "distance"] < max(distance_to_copy, 1)).all()


def test_report_files_are_written(qa_cohort, tmp_path):
    table, summary = run_qa(read_manifest(qa_cohort / "manifest.csv"))
    paths = write_qa_report(table, summary, tmp_path / "qa_out")
    written = pd.read_csv(paths["table"])
    assert len(written) == 12 and "flags" in written.columns
    text = paths["summary"].read_text()
    assert "| exact_duplicate | 2 |" in text and "P-dup-1/US/dup_a" in text and "**no**" in text
    assert "ghost" in text  # the manifest problem is in the summary


def test_qa_cli_writes_outputs_and_strict_fails(qa_cohort, tmp_path):
    from typer.testing import CliRunner

    from dlradiomics.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["qa", str(qa_cohort / "manifest.csv"), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "QA of 12 images" in result.output and "size_mismatch: 1" in result.output
    assert (tmp_path / "cli" / "qa.csv").is_file() and (tmp_path / "cli" / "qa_summary.md").is_file()
    strict = runner.invoke(app, ["qa", str(qa_cohort / "manifest.csv"), "--out", str(tmp_path / "cli"), "--strict"])
    assert strict.exit_code == 1


def test_manifest_cli_check_lists_problems(qa_cohort):
    from typer.testing import CliRunner

    from dlradiomics.cli import app

    result = CliRunner().invoke(app, ["manifest", "check", str(qa_cohort / "manifest.csv"), "--check-images"])
    assert result.exit_code == 1
    assert "patient ghost, column image: image file not found" in result.output
    assert "mask size (20, 20) differs" in result.output


def test_worker_processes_give_the_same_table(qa_cohort):
    cohort = read_manifest(qa_cohort / "manifest.csv")
    serial, _ = run_qa(cohort)
    parallel, _ = run_qa(cohort, n_jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)


def test_a_plain_table_is_validated_then_checked(qa_cohort):
    table = read_manifest(qa_cohort / "manifest.csv").table
    checked, summary = run_qa(table.drop(columns=["roi_id"]))
    assert list(checked["roi_id"]) == list(table["roi_id"]) and summary.n_rows == len(table)


# --- QA findings cached by content (dlradiomics.cohort.qa.QaCache) ---------------------------------


class _CountingReads:
    """Counts the files QA's checks open (the real reader runs)."""

    def __init__(self, monkeypatch):
        from dlradiomics.cohort.qa import checks

        self.paths: list[str] = []
        real = checks.read_image

        def counted(path, *args, **kwargs):
            self.paths.append(str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(checks, "read_image", counted)


def _qa_cache(store_dir, **settings):
    from dlradiomics.cohort.qa import QaCache
    from dlradiomics.io import FileHashCache
    from dlradiomics.store import FILE_HASHES, FeatureStore

    # A new store and hash cache each time, as a new process would open them.
    return QaCache(FeatureStore(store_dir), FileHashCache(store_dir / FILE_HASHES), **settings)


def _finish(cache):
    cache.store.close()
    cache.hashes.save()


def test_cached_qa_reads_only_changed_files_and_equals_a_fresh_check(qa_cohort, tmp_path, monkeypatch):
    cohort = read_manifest(qa_cohort / "manifest.csv")
    fresh_table, fresh_summary = run_qa(cohort)
    reads = _CountingReads(monkeypatch)
    store = tmp_path / "store"

    first = _qa_cache(store)
    table, summary = run_qa(cohort, cache=first)
    _finish(first)
    assert first.n_computed == 12 and first.n_reused == 0
    pd.testing.assert_frame_equal(table, fresh_table)
    assert summary.flag_counts == fresh_summary.flag_counts
    pd.testing.assert_frame_equal(summary.duplicate_pairs, fresh_summary.duplicate_pairs)

    reads.paths.clear()
    second = _qa_cache(store)
    table, summary = run_qa(cohort, cache=second)
    assert reads.paths == [] and second.n_computed == 0 and second.n_reused == 12
    pd.testing.assert_frame_equal(table, fresh_table)
    pd.testing.assert_frame_equal(summary.duplicate_pairs, fresh_summary.duplicate_pairs)

    # One image rewritten (a lesion of another brightness): its row alone is read again, and its
    # findings are those of a fresh check of the changed file.
    changed = np.asarray(Image.open(qa_cohort / "clean.png")).copy()
    changed[10:25, 15:35] = 200
    write_png(qa_cohort / "clean.png", changed)
    third = _qa_cache(store)
    table, _ = run_qa(cohort, cache=third)
    assert third.n_computed == 1 and third.n_reused == 11
    assert sorted(reads.paths) == sorted([str(qa_cohort / "clean.png"), str(qa_cohort / "clean_mask.png")])
    pd.testing.assert_frame_equal(table, run_qa(cohort)[0])
    assert table.loc[table["roi_id"] == "clean/US/clean", "roi_max"].item() == 200.0


def test_a_changed_qa_setting_checks_every_row_again(qa_cohort, tmp_path):
    cohort = read_manifest(qa_cohort / "manifest.csv")
    first = _qa_cache(tmp_path / "store")
    run_qa(cohort, cache=first)
    _finish(first)
    looser = _qa_cache(tmp_path / "store", tiny_mask_pixels=5)
    table, _ = run_qa(cohort, cache=looser)
    assert looser.n_computed == 12 and looser.n_reused == 0
    assert _flags(table)["tiny"] == set()  # nine lesion pixels are no longer tiny
    pd.testing.assert_frame_equal(table, run_qa(cohort, tiny_mask_pixels=5)[0])


def test_the_manifest_check_and_qa_read_each_file_once_through_the_cache(qa_cohort, tmp_path, monkeypatch):
    plain = read_manifest(qa_cohort / "manifest.csv", check_images=True)
    assert {problem.column for problem in plain.problems} >= {"image", "mask"}  # corrupt image, empty/wrong mask
    reads = _CountingReads(monkeypatch)
    cache = _qa_cache(tmp_path / "store")
    cohort = read_manifest(qa_cohort / "manifest.csv", check_images=True, read_errors=cache.read_errors)
    assert cohort.problems == plain.problems
    pd.testing.assert_frame_equal(cohort.table, plain.table)
    pd.testing.assert_frame_equal(cohort.rejected, plain.rejected)
    opened = len(reads.paths)
    table, _ = run_qa(cohort, cache=cache)
    assert len(reads.paths) == opened  # QA of the rows kept: answered from what the manifest check read
    pd.testing.assert_frame_equal(table, run_qa(plain)[0])
    _finish(cache)

    reads.paths.clear()
    again = _qa_cache(tmp_path / "store")
    cohort = read_manifest(qa_cohort / "manifest.csv", check_images=True, read_errors=again.read_errors)
    assert reads.paths == [] and cohort.problems == plain.problems
    pd.testing.assert_frame_equal(cohort.rejected, plain.rejected)

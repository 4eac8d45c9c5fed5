"""Loaders on the public data sets in ../shared/data (skipped when absent) and on a BUSI-style layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from dlradiomics.cohort import (
    Cohort,
    breastdm_manifest,
    bus_bra_manifest,
    busi_manifest,
    mini_mias_manifest,
    read_manifest,
    write_manifest,
)
from dlradiomics.io import load_roi, read_image
from roi_files import lesion_image, write_png


def test_bus_bra_counts_folds_and_extras(bus_bra_dir, tmp_path):
    frame = bus_bra_manifest(bus_bra_dir)
    assert len(frame) == 1875 and frame["patient_id"].nunique() == 1064
    patient_labels = frame.groupby("patient_id")["label"].first().value_counts()
    assert patient_labels.to_dict() == {"benign": 722, "malignant": 342}
    assert set(frame["modality"]) == {"US"}
    assert set(frame["fold5"]) == set(range(1, 6)) and set(frame["fold10"]) == set(range(1, 11))
    # The publishers' folds are patient-level: one patient never spans two folds.
    assert (frame.groupby("patient_id")[["fold5", "fold10"]].nunique() == 1).all().all()
    assert {"birads", "device", "histology"} <= set(frame.columns)
    assert frame["device"].value_counts()["GE Logiq 7 @10-14MHz"] == 902
    cohort = Cohort.from_table(frame)
    assert cohort.problems == [] and len(cohort) == 1875  # every image and mask file exists
    roi = cohort.load_roi(cohort.table["roi_id"].iloc[0])
    assert roi.mask.any() and roi.image.shape == roi.mask.shape
    # Written and read back, the manifest is the same cohort.
    reread = read_manifest(write_manifest(frame, tmp_path / "bus_bra.csv"))
    assert reread.problems == [] and list(reread.table["roi_id"]) == list(cohort.table["roi_id"])


def test_mini_mias_circles_land_where_info_txt_says(mini_mias_dir, tmp_path):
    frame = mini_mias_manifest(mini_mias_dir, tmp_path / "masks")
    rows = frame.set_index(frame["image"].map(lambda p: p.rsplit("/", 1)[-1]))
    # Info.txt: "mdb002 G CIRC B 522 280 69" -> centre column 522, row 1023 - 280 = 743.
    mdb002 = rows.loc["mdb002.png"]
    mask = read_image(mdb002["mask"], as_labels=True).array != 0
    assert mask.shape == (1024, 1024)
    assert mask[743, 522] and not mask[280, 522]  # y counts from the bottom, not the top
    assert mask[743, 522 + 66] and not mask[743, 522 + 72]
    assert mask.sum() == pytest.approx(math.pi * 69**2, rel=0.02)
    assert mdb002["label"] == "benign" and mdb002["view"] == "MLO" and mdb002["modality"] == "MG"
    # mdb001 and mdb002 are the right and left films of one woman.
    assert rows.loc["mdb001.png", "patient_id"] == mdb002["patient_id"]
    # mdb005 has two lesions: (477, 133, r 30) and (500, 168, r 26), both in its one mask.
    two = read_image(rows.loc["mdb005.png", "mask"], as_labels=True).array != 0
    assert two[1023 - 133, 477] and two[1023 - 168, 500] and rows.loc["mdb005.png", "n_lesions"] == 2
    skipped = {item["item"]: item["reason"] for item in frame.attrs["skipped"]}
    assert "without centre and radius" in skipped["mdb059"]
    assert "mdb059.png" not in rows.index
    # Women with a benign lesion in one breast and a malignant one in the other are left out, by reason.
    discordant = [item for item in frame.attrs["skipped"] if "one breast" in item["reason"]]
    assert discordant and (frame.groupby("patient_id")["label"].nunique() == 1).all()
    cohort = Cohort.from_table(frame, check_images=True)
    assert cohort.problems == [] and len(cohort) == len(frame) > 90


def test_breastdm_masks_match_published_pixel_counts(breastdm_dir):
    frame = breastdm_manifest(breastdm_dir)
    assert len(frame) == 24 and frame["label"].value_counts().to_dict() == {"malignant": 20, "benign": 4}
    assert set(frame["modality"]) == {"MRI"}
    for row in frame.itertuples():
        assert load_roi(row.image, row.mask).mask.sum() == row.mask_pixels


def test_busi_layout_merges_multiple_masks_and_skips_normal(tmp_path):
    data = tmp_path / "busi"
    for folder in ("benign", "malignant", "normal"):
        (data / folder).mkdir(parents=True)
    image, mask = lesion_image()
    write_png(data / "benign" / "benign (1).png", image)
    write_png(data / "benign" / "benign (1)_mask.png", mask * 255)
    write_png(data / "malignant" / "malignant (1).png", image)
    first, second = np.zeros_like(mask), np.zeros_like(mask)
    first[2:6, 2:6], second[30:35, 40:45] = 255, 255
    write_png(data / "malignant" / "malignant (1)_mask.png", first)
    write_png(data / "malignant" / "malignant (1)_mask_1.png", second)
    write_png(data / "malignant" / "malignant (2).png", image)  # no mask: skipped
    write_png(data / "normal" / "normal (1).png", image)
    write_png(data / "normal" / "normal (1)_mask.png", np.zeros_like(mask))

    with pytest.raises(ValueError, match=r"malignant \(1\).png has 2 masks to merge; pass mask_dir"):
        busi_manifest(data)
    frame = busi_manifest(data, tmp_path / "merged")
    assert sorted(frame["label"]) == ["benign", "malignant"]
    merged = frame.loc[frame["label"] == "malignant"].iloc[0]
    assert merged["n_masks"] == 2 and merged["mask"].startswith(str(tmp_path / "merged"))
    union = np.asarray(Image.open(merged["mask"])) != 0
    assert union.sum() == 16 + 25 and union[3, 3] and union[32, 42]
    assert [item["item"].rsplit("/", 1)[-1] for item in frame.attrs["skipped"]] == ["malignant (2).png"]
    cohort = Cohort.from_table(frame, check_images=True)
    assert cohort.problems == [] and cohort.n_patients == 2


def test_qa_on_real_bus_bra_images_runs_clean(bus_bra_dir):
    from dlradiomics.cohort.qa import run_qa

    cohort = Cohort.from_table(bus_bra_manifest(bus_bra_dir).head(40))
    table, summary = run_qa(cohort)
    assert len(table) == 40 and table["error"].isna().all()
    assert (table["mask_pixels"] > 0).all() and (table["image_rows"] == table["mask_rows"]).all()
    assert not {"unreadable_image", "size_mismatch", "empty_mask", "exact_duplicate"} & set(summary.flag_counts)


def test_manifest_cli_writes_a_readable_bus_bra_manifest(bus_bra_dir, tmp_path):
    from typer.testing import CliRunner

    from dlradiomics.cli import app

    out = tmp_path / "cohorts" / "bus_bra.yaml"
    result = CliRunner().invoke(app, ["manifest", "bus-bra", str(bus_bra_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote 1875 rows (1064 patients)" in result.output
    cohort = read_manifest(out)
    assert cohort.problems == [] and len(cohort) == 1875 and set(cohort.table["fold5"]) == set(range(1, 6))

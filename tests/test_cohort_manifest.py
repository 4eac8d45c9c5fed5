"""Manifest reading, validation (every problem at once) and writing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlradiomics.cohort import Cohort, ManifestError, parse_label, read_manifest, write_manifest
from roi_files import lesion_image, write_png


@pytest.fixture()
def study(tmp_path):
    """A folder with three good image/mask pairs, one wrong-size mask and one corrupt image."""
    for name in ("a", "b", "c"):
        image, mask = lesion_image(seed=ord(name))
        write_png(tmp_path / f"{name}.png", image)
        write_png(tmp_path / f"{name}_mask.png", mask * 255)
    write_png(tmp_path / "small_mask.png", np.ones((5, 5), dtype=np.uint8))
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG not really")
    return tmp_path


def write_csv(folder, text):
    path = folder / "manifest.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "spelling, expected",
    [("benign", 0), ("Malignant", 1), (" B ", 0), ("m", 1), ("0", 0), (1, 1), ("1.0", 1), ("maybe", None), (True, None)],
)
def test_parse_label_spellings(spelling, expected):
    assert parse_label(spelling) == expected


def test_good_csv_gives_normalised_table(study):
    path = write_csv(
        study,
        "patient_id,modality,image,mask,label,view,site,birads,fold\n"
        "007,US,a.png,a_mask.png,Malignant,CC,centre1,4,2\n"
        "007,US,b.png,b_mask.png,M,MLO,centre1,5,2\n"
        "008,MG,c.png,c_mask.png,benign,,centre2,3,1\n",
    )
    cohort = read_manifest(path)
    assert cohort.problems == [] and cohort.rejected.empty
    table = cohort.table
    assert list(table.columns[:10]) == [
        "roi_id", "patient_id", "modality", "image", "mask", "label", "view", "group", "mask_label", "slice"
    ]
    assert list(table["roi_id"]) == ["007/US/a", "007/US/b", "008/MG/c"]
    assert list(table["patient_id"]) == ["007", "007", "008"]  # leading zeros survive
    assert list(table["label"]) == [1, 1, 0] and table["label"].dtype == np.int64
    assert table.loc[0, "image"] == str(study / "a.png")  # relative to the manifest's folder
    assert list(table["group"]) == ["centre1", "centre1", "centre2"]
    assert list(table["birads"]) == [4, 5, 3] and list(table["fold"]) == [2, 2, 1]
    assert cohort.n_patients == 2 and cohort.modalities == ["MG", "US"]
    cohort.raise_for_problems()  # nothing to raise
    assert cohort.load_roi("008/MG/c").mask.sum() == 300


def test_every_problem_is_reported_at_once_with_row_patient_and_column(study):
    path = write_csv(
        study,
        "patient_id,modality,image,mask,label\n"
        "p1,US,a.png,a_mask.png,benign\n"          # row 1: good
        "p2,US,missing.png,b_mask.png,benign\n"    # row 2: missing image file
        "p3,US,b.png,b_mask.png,probably\n"        # row 3: unknown label
        "p4,US,c.png,c_mask.png,malignant\n"       # row 4: p4 conflicts with row 5
        "p4,US,a.png,a_mask.png,benign\n"          # row 5
        "p1,US,a.png,a_mask.png,benign\n"          # row 6: duplicate of row 1
        "p6,US,c.png,small_mask.png,M\n"           # row 7: wrong-size mask (check_images)
        "p7,US,corrupt.png,c_mask.png,M\n"         # row 8: corrupt image (check_images)
        ",US,c.png,c_mask.png,M\n",                # row 9: no patient
    )
    cohort = read_manifest(path, check_images=True)
    found = {(p.row, p.column) for p in cohort.problems}
    assert found == {(2, "image"), (3, "label"), (4, "label"), (5, "label"), (6, "image"), (7, "mask"),
                     (8, "image"), (9, "patient_id")}
    assert list(cohort.table["patient_id"]) == ["p1"]
    assert sorted(cohort.rejected["row"]) == [2, 3, 4, 5, 6, 7, 8, 9]
    with pytest.raises(ManifestError) as caught:
        cohort.raise_for_problems()
    report = str(caught.value)
    assert "row 2, patient p2, column image: image file not found" in report
    assert "unknown label 'probably'" in report
    assert "patient has conflicting labels: benign (rows 5), malignant (rows 4)" in report
    assert "duplicate of row 1" in report
    assert "mask size (5, 5) differs from image size (40, 50)" in report
    assert "corrupt.png: cannot read" in report
    assert report.count("\n") == len(cohort.problems)


def test_without_check_images_files_are_not_opened(study):
    path = write_csv(study, "patient_id,modality,image,mask,label\np7,US,corrupt.png,c_mask.png,M\n")
    assert len(read_manifest(path).table) == 1
    assert len(read_manifest(path, check_images=True).table) == 0


def test_missing_required_columns_are_named(study):
    path = write_csv(study, "patient,modality,image,label\np1,US,a.png,benign\n")
    cohort = read_manifest(path)
    assert {(p.row, p.column) for p in cohort.problems} == {(None, "patient_id"), (None, "mask")}
    assert cohort.table.empty and len(cohort.rejected) == 1
    with pytest.raises(ManifestError, match="file, column mask: required column is missing"):
        cohort.raise_for_problems()


def test_bad_mask_label_and_slice_values(study):
    path = write_csv(
        study,
        "patient_id,modality,image,mask,label,mask_label,slice\n"
        "p1,US,a.png,a_mask.png,B,two,\np2,US,b.png,b_mask.png,B,,-1\np3,US,c.png,c_mask.png,B,255,0\n",
    )
    cohort = read_manifest(path, check_images=True)
    assert {(p.row, p.column) for p in cohort.problems} == {(1, "mask_label"), (2, "slice")}
    assert cohort.table["mask_label"].tolist() == [255] and cohort.table["slice"].tolist() == [0]


def test_yaml_list_and_rows_forms_equal_csv(study):
    csv_path = write_csv(study, "patient_id,modality,image,mask,label,birads\n1,US,a.png,a_mask.png,B,3\n")
    (study / "list.yaml").write_text(
        "- {patient_id: 1, modality: US, image: a.png, mask: a_mask.png, label: B, birads: 3}\n"
    )
    (study / "rows.yml").write_text(
        "rows:\n  - patient_id: '1'\n    modality: US\n    image: a.png\n    mask: a_mask.png\n    label: b\n    birads: 3\n"
    )
    expected = read_manifest(csv_path).table
    for name in ("list.yaml", "rows.yml"):
        pd.testing.assert_frame_equal(read_manifest(study / name).table, expected, check_dtype=False)
    (study / "bad.yaml").write_text("just: a mapping\n")
    with pytest.raises(ManifestError, match="list of rows"):
        read_manifest(study / "bad.yaml")


def test_repeated_stems_get_numbered_roi_ids(study):
    (study / "sub").mkdir()
    write_png(study / "sub" / "a.png", lesion_image()[0])
    path = write_csv(study, "patient_id,modality,image,mask,label\n1,US,a.png,a_mask.png,B\n1,US,sub/a.png,a_mask.png,B\n")
    assert list(read_manifest(path).table["roi_id"]) == ["1/US/a", "1/US/a#2"]


@pytest.mark.parametrize("suffix", [".csv", ".yaml"])
def test_write_then_read_round_trips(study, suffix):
    frame = pd.DataFrame(
        {
            "patient_id": ["x1", "x2"],
            "modality": ["US", "US"],
            "image": [str(study / "a.png"), str(study / "b.png")],
            "mask": [str(study / "a_mask.png"), str(study / "b_mask.png")],
            "label": ["malignant", 0],
            "birads": [5, 2],
        }
    )
    original = Cohort.from_table(frame, study)
    out = write_manifest(original.table, study / f"written{suffix}")
    text = out.read_text()
    assert "a.png" in text and str(study) not in text  # portable relative paths
    reread = read_manifest(out)
    pd.testing.assert_frame_equal(reread.table, original.table, check_dtype=False)


def test_spreadsheet_csv_with_byte_order_mark(study):
    path = study / "excel.csv"
    path.write_bytes("\ufeffPatient_ID,Modality,Image,Mask,Label\np1,US,a.png,a_mask.png,Benign\n".encode("utf-8"))
    cohort = read_manifest(path)
    assert cohort.problems == [] and list(cohort.table["patient_id"]) == ["p1"]


def test_unparseable_manifest_file_is_a_manifest_error(study):
    (study / "broken.yaml").write_text("rows: [unclosed\n")
    with pytest.raises(ManifestError, match=r"(?s)broken.yaml.*file: not valid YAML: .*line 2"):
        read_manifest(study / "broken.yaml")
    with pytest.raises(ManifestError, match="manifest file not found"):
        read_manifest(study / "absent.csv")

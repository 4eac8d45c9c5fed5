"""A hostile corpus: a manifest full of broken rows beside good ones, and broken whole files.

:func:`build_corpus` writes, into one folder,

- ``manifest.csv``: :data:`N_GOOD_PATIENTS` good patients (tiny generated ultrasound-like images,
  each with its own lesion, so that no two are near-duplicates) and one row of each
  :class:`RowCase`: a missing, empty, corrupt, truncated or wrong file; a mask that cannot be a
  lesion mask; a label, patient id, modality, slice or mask label that is wrong; a row repeated,
  a patient with two labels, a row with too many cells ... Each broken case has its own patient id
  (``X_<name>``), except those about the patient id itself, which are found by row number;
- one file per :class:`WholeFileCase`: manifests, study files and parameter files that no command
  can use (empty, latin-1, binary, no header, an alias bomb, more folds than patients, one class,
  an unknown backbone ...), with the fragment the refusal must contain;
- ``study.yaml``: the cheapest study over ``manifest.csv`` (radiomic features, logistic
  regression, 2 x 2 folds, no canary).

The expectations live beside each case: which column is at fault, and whether the manifest
checks alone (without opening images) see the problem.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

N_GOOD_PATIENTS = 12  # 6 benign, 6 malignant: enough for 2 outer x 2 inner folds
SIZE = (40, 48)
COLUMNS = ["patient_id", "modality", "image", "mask", "label", "mask_label", "slice"]


@dataclass
class RowCase:
    """One kind of broken row.

    Args:
        name: short name; the row's patient is ``X_<name>`` unless ``patient_id`` says otherwise.
        column: the manifest column at fault (what a message must name).
        rows: the manifest rows of the case (usually one).
        seen_without_images: the manifest checks find it without opening any image.
        good_rows: how many of the case's rows are good after all (a repeated row keeps its first).
        qa_only: a row that reads and extracts, but that QA flags (it is named by QA and kept).
    """

    name: str
    column: str
    rows: list[dict]
    seen_without_images: bool = False
    good_rows: int = 0
    qa_only: bool = False

    @property
    def patient(self) -> str:
        return str(self.rows[0]["patient_id"]).strip()


@dataclass
class WholeFileCase:
    """One file that a command must refuse with one clear message (exit status 2).

    Args:
        name: short name.
        kind: "manifest", "study" or "params".
        path: the file.
        fragment: text the message must contain.
        commands: the commands it is tried with.
        extra: extra command-line words (e.g. a scheduler address).
    """

    name: str
    kind: str
    path: Path
    fragment: str
    commands: tuple[str, ...]
    extra: tuple[str, ...] = ()


@dataclass
class Corpus:
    """What :func:`build_corpus` wrote."""

    root: Path
    manifest: Path
    study: Path
    good: pd.DataFrame
    row_cases: list[RowCase]
    whole_files: list[WholeFileCase] = field(default_factory=list)

    def row_numbers(self) -> dict[str, list[int]]:
        """The 1-based manifest rows of each case."""
        numbers: dict[str, list[int]] = {}
        row = len(self.good)
        for case in self.row_cases:
            numbers[case.name] = list(range(row + 1, row + 1 + len(case.rows)))
            row += len(case.rows)
        return numbers


def textured_roi(seed: int, shape=SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A speckled image with a smooth random background and an elliptical lesion at a random place."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    background = 90 + 40 * np.sin(rows / rng.uniform(3, 9) + rng.uniform(0, 6)) * np.cos(cols / rng.uniform(3, 9))
    image = background + rng.normal(0, 18, size=shape)
    centre = (rng.uniform(12, shape[0] - 12), rng.uniform(12, shape[1] - 12))
    radii = rng.uniform(4, 9, size=2)
    lesion = ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1
    image[lesion] = rng.normal(rng.uniform(30, 200), 15, size=int(lesion.sum()))
    return np.clip(image, 0, 255).astype(np.uint8), lesion.astype(np.uint8)


def _png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def _pair(folder: Path, name: str, seed: int) -> tuple[Path, Path]:
    image, mask = textured_roi(seed)
    return _png(folder / f"{name}.png", image), _png(folder / f"{name}_mask.png", mask * 255)


def _row(patient, image, mask, label="benign", modality="US", **extra) -> dict:
    return {"patient_id": patient, "modality": modality, "image": str(image), "mask": str(mask), "label": label,
            **extra}


def build_corpus(root: Path) -> Corpus:
    """Write the hostile corpus into ``root`` (see the module docstring)."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    good = []
    for index in range(N_GOOD_PATIENTS):
        image, mask = _pair(images, f"good{index:02d}", seed=index)
        good.append(_row(f"G{index:02d}", image, mask, label="malignant" if index % 2 else "benign"))
    cases = _row_cases(images)
    manifest = root / "manifest.csv"
    frame = pd.DataFrame(good + [row for case in cases for row in case.rows]).reindex(columns=COLUMNS)
    text = frame.to_csv(index=False)
    # One row with more cells than the header: a comma in an unquoted path.
    too_many = "X_too_many_cells,US,images/a,b.png,images/good00_mask.png,benign,,\n"
    manifest.write_text(text + too_many, encoding="utf-8")
    cases.append(RowCase("too_many_cells", "", [{"patient_id": "X_too_many_cells"}], seen_without_images=True))
    study = _write_yaml(root / "study.yaml", cheapest_study("manifest.csv"))
    corpus = Corpus(root=root, manifest=manifest, study=study, good=pd.DataFrame(good), row_cases=cases)
    corpus.whole_files = _whole_file_cases(root, corpus)
    return corpus


def cheapest_study(manifest: str, **changes) -> dict:
    """The cheapest study file over a manifest: radiomic, logistic, 2 x 2 folds, no canary, no Grad-CAM."""
    study = {
        "name": "hostile",
        "cohort": {"manifest": manifest, "modalities": ["US"]},
        "classifiers": ["logistic"],
        "feature_sources": ["radiomic"],
        "fusion": ["single"],
        "selection": {"lasso": False},
        "cv": {"outer_folds": 2, "inner_folds": 2, "seed": 1},
        "report": {"bootstrap": 10, "gradcam_examples": 0, "canary": False},
        "n_jobs": 1,
    }
    for key, value in changes.items():
        study[key] = {**study[key], **value} if isinstance(value, dict) and isinstance(study.get(key), dict) else value
    return study


def _write_yaml(path: Path, mapping) -> Path:
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return path


def _row_cases(folder: Path) -> list[RowCase]:  # noqa: PLR0915 - one block per case reads best
    import SimpleITK as sitk

    from roi_files import write_dicom

    cases: list[RowCase] = []
    seed = iter(range(100, 1000))

    def pair(name):
        return _pair(folder, name, next(seed))

    def add(name, column, rows, **kwargs):
        cases.append(RowCase(name, column, rows if isinstance(rows, list) else [rows], **kwargs))

    patient = "X_{}".format
    image, mask = pair("ok_for_missing")
    add("missing_image", "image", _row(patient("missing_image"), folder / "absent.png", mask), seen_without_images=True)
    add("missing_mask", "mask", _row(patient("missing_mask"), image, folder / "absent_mask.png"),
        seen_without_images=True)
    (folder / "a_folder.png").mkdir(exist_ok=True)
    add("image_is_folder", "image", _row(patient("image_is_folder"), folder / "a_folder.png", mask),
        seen_without_images=True)
    add("mask_is_folder", "mask", _row(patient("mask_is_folder"), image, folder / "a_folder.png"),
        seen_without_images=True)
    device = folder / "device.png"
    if not device.exists():
        device.symlink_to("/dev/zero")  # reading it would never end
    add("image_is_a_device", "image", _row(patient("image_is_a_device"), device, mask), seen_without_images=True)
    add("blank_image_path", "image", _row(patient("blank_image_path"), "", mask), seen_without_images=True)
    add("blank_mask_path", "mask", _row(patient("blank_mask_path"), image, ""), seen_without_images=True)

    image, mask = pair("zero_image")
    image.write_bytes(b"")
    add("zero_byte_image", "image", _row(patient("zero_byte_image"), image, mask))
    image, mask = pair("zero_mask")
    mask.write_bytes(b"")
    add("zero_byte_mask", "mask", _row(patient("zero_byte_mask"), image, mask))
    image, mask = pair("corrupt")
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    add("corrupt_png", "image", _row(patient("corrupt_png"), image, mask))
    image, mask = pair("truncated")
    image.write_bytes(image.read_bytes()[:60])
    add("truncated_png", "image", _row(patient("truncated_png"), image, mask))
    image, mask = pair("text_as_png")
    image.write_text("this is not an image\n")
    add("text_file_as_image", "image", _row(patient("text_file_as_image"), image, mask))
    image, mask = pair("unsupported")
    text_image = folder / "unsupported.txt"
    text_image.write_text("1 2 3\n")
    add("unsupported_format", "image", _row(patient("unsupported_format"), text_image, mask))

    pixels, lesion = textured_roi(next(seed))
    dicom = write_dicom(folder / "whole.dcm", pixels.astype(np.uint16) * 16)
    truncated_dicom = folder / "truncated.dcm"
    truncated_dicom.write_bytes(dicom.read_bytes()[: dicom.stat().st_size // 2])
    lesion_mask = _png(folder / "for_dicom_mask.png", lesion * 255)
    add("truncated_dicom", "image", _row(patient("truncated_dicom"), truncated_dicom, lesion_mask))
    no_pixels = folder / "no_pixels.dcm"
    import pydicom

    dataset = pydicom.dcmread(dicom)
    del dataset.PixelData
    dataset.save_as(no_pixels, enforce_file_format=True)
    add("dicom_without_pixels", "image", _row(patient("dicom_without_pixels"), no_pixels, lesion_mask))

    image, mask = pair("wrong_size")
    _png(mask, np.full((10, 12), 255, np.uint8))
    add("wrong_size_mask", "mask", _row(patient("wrong_size_mask"), image, mask))
    image, mask = pair("empty")
    _png(mask, np.zeros(SIZE, np.uint8))
    add("empty_mask", "mask", _row(patient("empty_mask"), image, mask))
    image, mask = pair("full_frame")
    _png(mask, np.full(SIZE, 255, np.uint8))
    add("full_frame_mask", "mask", _row(patient("full_frame_mask"), image, mask))
    image, mask = pair("inverted")
    real_lesion = np.asarray(Image.open(mask)) > 0
    _png(mask, np.where(real_lesion, 0, 255).astype(np.uint8))
    add("inverted_mask", "mask", _row(patient("inverted_mask"), image, mask))
    image, mask = pair("swapped")
    add("swapped_image_mask", "mask", _row(patient("swapped_image_mask"), mask, image))
    image, mask = pair("mask_is_image")
    add("mask_equals_image", "mask", _row(patient("mask_equals_image"), image, image))
    image, mask = pair("colour_mask")
    lesion = np.asarray(Image.open(mask)) > 0
    colour = np.zeros(SIZE + (3,), np.uint8)
    colour[lesion] = (255, 0, 0)
    colour[~lesion] = (0, 0, 255)
    _png(mask, colour)
    add("colour_mask", "mask", _row(patient("colour_mask"), image, mask))
    image, mask = pair("label_absent")
    add("mask_label_absent", "mask", _row(patient("mask_label_absent"), image, mask, mask_label="7"))
    add("mask_label_not_a_number", "mask_label",
        _row(patient("mask_label_not_a_number"), image, mask, mask_label="two"), seen_without_images=True)

    volume = np.stack([textured_roi(next(seed))[0] for _ in range(3)])
    volume_mask = np.zeros(volume.shape, np.uint8)
    volume_mask[1, 10:20, 10:20] = 1
    volume_file = folder / "volume.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(volume_file))
    mask_3d = folder / "mask3d.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(volume_mask), str(mask_3d))
    image, mask = pair("for_3d_mask")
    add("mask_3d_for_2d_image", "mask", _row(patient("mask_3d_for_2d_image"), image, mask_3d))
    flat_mask = _png(folder / "flat2d_mask.png", np.pad(np.full((10, 10), 255, np.uint8), ((10, 20), (10, 28))))
    add("volume_without_slice", "image", _row(patient("volume_without_slice"), volume_file, flat_mask))
    add("slice_out_of_range", "image", _row(patient("slice_out_of_range"), volume_file, flat_mask, slice="99"))
    add("nan_slice", "slice", _row(patient("nan_slice"), volume_file, flat_mask, slice="nan"),
        seen_without_images=True)
    add("negative_slice", "slice", _row(patient("negative_slice"), volume_file, flat_mask, slice="-1"),
        seen_without_images=True)

    nan_image = folder / "nan.nrrd"  # NIfTI would store NaN as 0
    float_pixels, float_lesion = textured_roi(next(seed))
    float_pixels = float_pixels.astype(np.float32)
    float_pixels[float_lesion > 0] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(float_pixels), str(nan_image))
    add("nan_pixels", "image", _row(patient("nan_pixels"), nan_image, _png(folder / "nan_mask.png", float_lesion * 255)))

    image, mask = pair("flat")
    _png(image, np.full(SIZE, 90, np.uint8))
    add("flat_image", "image", _row(patient("flat_image"), image, mask), qa_only=True)
    image, mask = pair("tiny")
    tiny = np.zeros(SIZE, np.uint8)
    tiny[20, 20] = 255
    _png(mask, tiny)
    add("one_pixel_mask", "mask", _row(patient("one_pixel_mask"), image, mask), qa_only=True)

    image, mask = pair("labels")
    add("unknown_label", "label", _row(patient("unknown_label"), image, mask, label="maybe"), seen_without_images=True)
    add("blank_label", "label", _row(patient("blank_label"), image, mask, label=""), seen_without_images=True)
    add("blank_patient_id", "patient_id", _row("", image, mask), seen_without_images=True)
    add("spaces_patient_id", "patient_id", _row("   ", image, mask), seen_without_images=True)
    add("blank_modality", "modality", _row(patient("blank_modality"), image, mask, modality=""),
        seen_without_images=True)
    add("invalid_modality_name", "modality", _row(patient("invalid_modality_name"), image, mask, modality="U.S."),
        seen_without_images=True)
    image, mask = pair("duplicate")
    add("duplicate_row", "image", [_row(patient("duplicate_row"), image, mask),
                                   _row(patient("duplicate_row"), image, mask)],
        seen_without_images=True, good_rows=1)
    first, first_mask = pair("conflict_a")
    second, second_mask = pair("conflict_b")
    add("conflicting_labels", "label", [_row(patient("conflicting_labels"), first, first_mask, label="benign"),
                                        _row(patient("conflicting_labels"), second, second_mask, label="malignant")],
        seen_without_images=True)
    # Not broken, but easy to lose: an odd spelling of US (used), a modality the study does not name (left out).
    image, mask = pair("odd_spelling")
    add("odd_modality_spelling", "", _row(patient("odd_modality_spelling"), image, mask, modality=" us ",
                                          label="Malignant "), good_rows=1)
    image, mask = pair("other_modality")
    add("other_modality", "modality", _row(patient("other_modality"), image, mask, modality="ultrasound"),
        good_rows=1)
    return cases


def _whole_file_cases(root: Path, corpus: Corpus) -> list[WholeFileCase]:
    files = root / "whole"
    files.mkdir(exist_ok=True)
    cases: list[WholeFileCase] = []
    manifest_commands = ("check", "qa", "extract", "run", "predict")

    def manifest(name, content: bytes | str, fragment, commands=manifest_commands, suffix=".csv"):
        path = files / f"{name}{suffix}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        cases.append(WholeFileCase(name, "manifest", path, fragment, commands))

    header = "patient_id,modality,image,mask,label\n"
    good = corpus.good.iloc[0]
    good_line = f"G00,US,{good['image']},{good['mask']},benign\n"
    manifest("empty_manifest", b"", "is empty")
    manifest("blank_manifest", "\n \n\t\n", "is empty")
    manifest("latin1_manifest", (header + "Ren\xe9,US,a.png,b.png,benign\n").encode("latin-1"), "not UTF-8")
    manifest("binary_manifest", (root / "images" / "good00.png").read_bytes(), "PNG image")
    manifest("nul_bytes_manifest", header.encode() + b"\x00\x01\x02\x00" * 20, "binary")
    manifest("no_header_manifest", good_line, "first line must be the header")
    manifest("missing_label_column", "patient_id,modality,image,mask\n" + good_line.rsplit(",", 1)[0] + "\n",
             "label", commands=("check", "qa", "extract", "run"))
    manifest("header_only_manifest", header, "no rows")
    manifest("utf16_manifest", (header + good_line).encode("utf-16"), "UTF-16")
    manifest("semicolon_manifest", (header + good_line).replace(",", ";"), "separated by semicolons")
    manifest("xlsx_renamed_manifest", b"PK\x03\x04" + bytes(100), "Excel")
    manifest("repeated_column_manifest", "patient_id,modality,image,mask,label,label\n"
             + good_line.rstrip("\n") + ",malignant\n", "column appears more than once")
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    bomb += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    manifest("billion_laughs_manifest", "\n".join(bomb) + "\nrows: *i\n", "alias bomb", suffix=".yaml")
    manifest("yaml_scalars_manifest", "- just\n- words\n", "list of rows", suffix=".yaml")
    manifest("yaml_recursive_manifest", "rows: &r [*r]\n", "refers to", suffix=".yaml")
    folder_manifest = files / "folder_manifest.csv"
    folder_manifest.mkdir(exist_ok=True)
    cases.append(WholeFileCase("folder_as_manifest", "manifest", folder_manifest, "folder", ("run", "predict")))

    def study(name, mapping_or_text, fragment, commands=("run",), extra=()):
        path = files / f"{name}.yaml"
        path.write_text(mapping_or_text if isinstance(mapping_or_text, str)
                        else yaml.safe_dump(mapping_or_text, sort_keys=False), encoding="utf-8")
        cases.append(WholeFileCase(name, "study", path, fragment, commands, extra))

    manifest_path = str(corpus.manifest)
    study("billion_laughs_study", "\n".join(bomb) + "\n", "alias bomb")
    study("empty_study", "", "the study file is empty")
    (files / "a_file").write_text("not a folder\n")
    study("output_is_a_file", cheapest_study(manifest_path, output=str(files / "a_file")), "is a file, not a folder")
    study("study_is_a_list", "- cohort\n- manifest\n", "mapping")
    study("study_repeated_key", f"cohort: {{manifest: {manifest_path}}}\ncv: {{outer_folds: 2}}\ncv: {{outer_folds: 9}}\n",
          "appears twice")
    study("study_unknown_key", cheapest_study(manifest_path, bootstrapp=3), "unknown key")
    study("more_folds_than_patients", cheapest_study(manifest_path, cv={"outer_folds": 9}), "outer_folds")
    four = files / "two_per_class.csv"
    corpus.good.head(4).to_csv(four, index=False)  # 2 benign, 2 malignant: 1 of each left to train on
    study("inner_folds_impossible", cheapest_study(str(four)), "at least 2")
    benign_only = files / "benign_only.csv"
    corpus.good[corpus.good["label"] == "benign"].to_csv(benign_only, index=False)
    study("one_class_cohort", cheapest_study(str(benign_only)), "both classes")
    study("absent_modality", cheapest_study(manifest_path, cohort={"modalities": ["US", "MG"]}), "MG (no usable row")
    study("unknown_backbone", cheapest_study(manifest_path, feature_sources=["deep"],
                                             deep={"backbone": "resnet9000"}), "unknown backbone")
    params_bad_value = files / "params_bad_value.yaml"
    params_bad_value.write_text("setting:\n  binWidth: wide\n")
    study("invalid_params_value", cheapest_study(manifest_path, radiomics={"params": str(params_bad_value)}),
          "binWidth")
    params_list = files / "params_list.yaml"
    params_list.write_text("- binWidth\n- 25\n")
    study("params_not_a_mapping", cheapest_study(manifest_path, radiomics={"params": str(params_list)}), "mapping")
    params_bomb = files / "params_bomb.yaml"
    params_bomb.write_text("\n".join(bomb) + "\n")
    study("params_billion_laughs", cheapest_study(manifest_path, radiomics={"params": str(params_bomb)}),
          "alias bomb")
    study("output_under_proc", cheapest_study(manifest_path, output="/proc/dlradiomics-out"), "/proc/dlradiomics-out")
    study("missing_fold_column", cheapest_study(manifest_path, cv={"fold_column": "publisher_fold"}),
          "publisher_fold")
    study("missing_split_file", cheapest_study(manifest_path, cv={"split_file": "no_such_split.csv"}),
          "no_such_split.csv")
    duplicated = files / "duplicated.csv"
    twins = corpus.good.copy()
    copy = twins.iloc[[0]].assign(patient_id="TWIN")
    pd.concat([twins, copy]).to_csv(duplicated, index=False)
    study("duplicate_images_across_patients", cheapest_study(str(duplicated)), "TWIN")
    flat_folder = files / "flat"
    flat_folder.mkdir(exist_ok=True)
    flat_rows = []
    for index in range(8):  # every image one grey value: no texture, so no image gets features
        _, lesion = textured_roi(500 + index)
        image = _png(flat_folder / f"flat{index}.png", np.full(SIZE, 90, np.uint8))
        flat_rows.append(_row(f"F{index}", image, _png(flat_folder / f"flat{index}_mask.png", lesion * 255),
                              label=index % 2))
    pd.DataFrame(flat_rows).to_csv(files / "all_flat.csv", index=False)
    study("no_image_has_features", cheapest_study(str(files / "all_flat.csv"), qa={"allow_duplicates": True}),
          "no image of the study has features")
    params_file = files / "params_for_extract.yaml"
    shutil.copy(params_bad_value, params_file)
    cases.append(WholeFileCase("extract_invalid_params", "params", params_file, "binWidth", ("extract",)))
    cases.append(WholeFileCase("extract_params_bomb", "params", params_bomb, "alias bomb", ("extract",)))
    cases.append(WholeFileCase("unreachable_scheduler", "scheduler", corpus.manifest, "tcp://127.0.0.1:9",
                               ("extract",), extra=("--scheduler", "tcp://127.0.0.1:9")))
    return cases

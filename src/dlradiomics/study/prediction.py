"""Apply a model bundle to the patients of a manifest: the manifest becomes tables, the bundle predicts them.

New patients go through the same steps as training patients (manifest checks, feature
extraction with the bundle's settings, the modelling table) and then the bundle's model.

- Labels play no part: the label column is dropped before validation, whatever it holds
  (absent, blank, unknown values), and the output has none.
- A patient any of whose images fails gets a `reason` and no probability: a silent fallback to
  the remaining images would give a number the reader cannot tell from a complete one.
- A patient who is scored but whose inputs are unlike the training data gets a `warnings` text:
  images stored or scaled unlike the training images of their modality (see
  `dlradiomics.study.intensity`), feature values outside the training range, and clinical values
  that are missing, unknown categories or not numbers (the model imputes them and was trained
  with a missing-value indicator; see `dlradiomics.study.clinical`).
- The bundle's view filter (the study's `cohort.views`, e.g. MG CC only) applies: images of other
  views are left out, with a warning naming them; a patient all of whose images are of other
  views gets a `reason` saying so.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from dlradiomics.bundle import ModelBundle
from dlradiomics.cohort import Cohort, read_manifest_table, view_filter
from dlradiomics.io import ImageReadError
from dlradiomics.io.atomic import check_writable_folder, write_csv_atomic
from dlradiomics.models import CLINICAL_KIND
from dlradiomics.models.blocks import build_model_table
from dlradiomics.study.clinical import ClinicalSpec, clinical_table
from dlradiomics.study.explain import write_gradcam_overlays
from dlradiomics.study.features import compute_feature_tables
from dlradiomics.study.intensity import image_intensity

logger = logging.getLogger(__name__)
# Validation needs a label on every row; new patients' labels are unknown and never used or shown.
PLACEHOLDER_LABEL = "benign"
DEFAULT_BACKBONE = "efficientnet_lite0"


def read_new_patients(manifest: str | Path) -> Cohort:
    """Read and check a manifest of new patients, ignoring its label column entirely.

    Args:
        manifest: CSV or YAML manifest; a `label` column may be absent, blank or hold anything.

    Returns:
        The cohort (every row carries a placeholder label that nothing downstream reports).

    Raises:
        ManifestError: the file itself cannot be read or is not a table.
    """
    manifest = Path(manifest)
    rows = read_manifest_table(manifest)
    rows = rows.drop(columns=[column for column in rows.columns if str(column).strip().lower() == "label"])
    rows["label"] = PLACEHOLDER_LABEL
    return Cohort.from_table(rows, manifest.parent, check_images=True, source=str(manifest))


@dataclass
class PatientTables:
    """New patients turned into the tables a bundle predicts.

    Args:
        cohort: the checked manifest (all modalities).
        rows: its rows of the bundle's modalities.
        model_table: modelling table of the patients that can be predicted (None when none can).
        reasons: per patient, why no probability can be given.
        image_warnings: per patient, images unlike the training images of their modality.
        clinical_warnings: per patient, clinical values the model fills in (missing, unknown, unreadable).
    """

    cohort: Cohort
    rows: pd.DataFrame
    model_table: pd.DataFrame | None
    reasons: dict[str, list[str]] = field(default_factory=dict)
    image_warnings: dict[str, list[str]] = field(default_factory=dict)
    clinical_warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def patients(self) -> list[str]:
        """Every patient of the manifest (good or rejected rows), sorted."""
        rejected = self.cohort.rejected.get("patient_id", pd.Series(dtype=str)).dropna()
        return sorted(set(self.cohort.table["patient_id"].astype(str)) | set(self.reasons)
                      | {str(patient) for patient in rejected if str(patient).strip()})


def _manifest_reasons(cohort: Cohort) -> dict[str, list[str]]:
    reasons: dict[str, list[str]] = {}
    for problem in cohort.problems:
        if problem.patient_id:
            reasons.setdefault(str(problem.patient_id), []).append(
                f"manifest row {problem.row}, column {problem.column}: {problem.message}")
    return reasons


def _image_warnings(bundle: ModelBundle, rows: pd.DataFrame) -> dict[str, list[str]]:
    """Images stored or scaled unlike the training images of their modality, per patient."""
    profiles = bundle.intensity_profiles
    unprofiled = sorted(set(rows["modality"]) - set(profiles))
    if unprofiled:
        logger.warning("the bundle records no training intensity profile for %s; those images are not checked",
                       unprofiled)
    found: dict[str, list[str]] = {}
    for _, row in rows[rows["modality"].isin(list(profiles))].iterrows():
        try:
            deviations = profiles[row["modality"]].deviations(image_intensity(row))
        except (ImageReadError, ValueError):
            continue  # an unreadable image is already a reason (manifest checks read every image)
        if deviations:
            found.setdefault(str(row["patient_id"]), []).append(
                f"{row['roi_id']}: {'; '.join(deviations)} (training {row['modality']} images: "
                f"{profiles[row['modality']].describe()})")
    return found


def patient_tables(bundle: ModelBundle, manifest: str | Path, *, store_dir: str | Path | None = None) -> PatientTables:
    """Check a manifest of new patients, compute their features as the bundle's study did, and build its table.

    Args:
        bundle: the loaded bundle.
        manifest: CSV or YAML manifest of new patients (labels ignored).
        store_dir: feature cache; None uses a temporary folder.

    Returns:
        The tables, with the reasons and image warnings per patient.
    """
    cohort = read_new_patients(manifest)
    rows = cohort.table[cohort.table["modality"].isin(bundle.modalities)]
    ignored = sorted(set(cohort.table["modality"]) - set(bundle.modalities))
    if ignored:
        logger.warning("modalities %s are not used by this model and are ignored", ignored)
    selection = view_filter(rows, bundle.settings.get("views") or {})
    rows = selection.kept
    view_reasons, view_warnings = _view_outcomes(selection)
    settings = bundle.settings
    with tempfile.TemporaryDirectory(prefix="dlradiomics-predict-") as scratch:
        params_file = None
        if settings.get("radiomics_params") is not None:
            # The bundle keeps the complete parameter mapping; a file is used as it is, so the
            # new patients' features are computed exactly as the training features were.
            params_file = Path(scratch) / "radiomics_params.yaml"
            params_file.write_text(yaml.safe_dump(settings["radiomics_params"]), encoding="utf-8")
        features = compute_feature_tables(
            rows, [kind for kind in bundle.feature_kinds if kind != CLINICAL_KIND],
            store_dir=Path(store_dir or Path(scratch) / "store"),
            radiomics_params=params_file, backbone=settings.get("backbone", DEFAULT_BACKBONE),
            weights=settings.get("weights", "imagenet"), progress=False)
    reasons = _manifest_reasons(cohort)
    for patient, texts in view_reasons.items():
        reasons.setdefault(patient, []).extend(texts)
    for _, failure in features.failures.iterrows():
        if pd.notna(failure["patient_id"]):
            reasons.setdefault(str(failure["patient_id"]), []).append(
                f"{failure['roi_id']}: {failure['stage']}: {failure['error']}")

    clinical_warnings: dict[str, list[str]] = {}
    tables = features.tables
    if CLINICAL_KIND in bundle.feature_kinds:
        # The columns, categories and per-patient rules of the training study, as the bundle recorded them.
        clinical = clinical_table(rows, ClinicalSpec.from_record(settings["clinical"]), training=False)
        for patient, why in clinical.reasons.items():
            reasons.setdefault(patient, []).extend(why)
        clinical_warnings = clinical.warnings
        imaged = set().union(*(set(frame["roi_id"]) for frame in tables.values())) if tables else None
        tables = {**tables, CLINICAL_KIND: clinical.table if imaged is None
                  else clinical.table[clinical.table["roi_id"].isin(imaged)]}
    model_table = None
    good = {kind: frame[~frame["patient_id"].astype(str).isin(reasons)] for kind, frame in tables.items()}
    present = [m for m in bundle.modalities if all((frame["modality"] == m).any() for frame in good.values())]
    if present:
        # The bundle's row level, not the number of modalities present: a patient-level
        # (multimodal) model gets patient rows even for patients with one modality.
        model_table, _, _ = build_model_table(good, present, bundle.feature_kinds, level=bundle.level)
    image_warnings = _image_warnings(bundle, rows[~rows["patient_id"].astype(str).isin(reasons)])
    for patient, texts in view_warnings.items():
        image_warnings.setdefault(patient, []).extend(texts)
    return PatientTables(cohort=cohort, rows=rows, model_table=model_table, reasons=reasons,
                         image_warnings=image_warnings, clinical_warnings=clinical_warnings)


def _view_outcomes(selection) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per patient, what the bundle's view filter left out: a reason when it left out every image
    of the patient's model modalities, else a warning naming the images left out."""
    kept_patients = set(selection.kept["patient_id"].astype(str))
    reasons: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    for patient, rows in selection.left_out.groupby(selection.left_out["patient_id"].astype(str)):
        texts = [f"{row.roi_id}: {row.reason}" for row in rows.itertuples()]
        if patient in kept_patients:
            warnings[patient] = [f"image left out, {text}" for text in texts]
        else:
            reasons[patient] = [f"every image of this patient is of a view the model does not use: {'; '.join(texts)}"]
    return reasons, warnings


def predict_manifest(bundle: ModelBundle, manifest: str | Path, *, out_dir: str | Path | None = None,
                     store_dir: str | Path | None = None, gradcam: bool = True) -> pd.DataFrame:
    """Predict every patient of a manifest with a bundle.

    Each patient may have any subset of the trained modalities.

    Args:
        bundle: the loaded bundle (`dlradiomics.bundle.load_bundle`).
        manifest: CSV or YAML manifest of new patients; labels are ignored (absent, blank or any value).
        out_dir: where to write `predictions.csv` (and Grad-CAM overlays); None writes nothing.
        store_dir: feature cache; None uses a temporary folder.
        gradcam: write Grad-CAM overlays for deep-feature models (needs `out_dir`).

    Returns:
        One row per patient: `patient_id`, `probability`, `predicted_class`, `contribution_*`,
        `modalities` used, `warnings` (inputs unlike the training data; empty when none) and
        `reason` (why there is no probability; empty when there is one).
    """
    out = check_writable_folder(out_dir) if out_dir is not None else None  # fails before any work
    tables = patient_tables(bundle, manifest, store_dir=store_dir)
    predictions = pd.DataFrame(index=pd.Index(tables.patients, name="patient_id"))
    if tables.model_table is not None:
        predictions = predictions.join(bundle.predict_table(tables.model_table))
    if "probability" not in predictions:
        predictions["probability"] = float("nan")
        predictions["predicted_class"] = pd.NA
        predictions["warnings"] = ""
    predictions["predicted_class"] = predictions["predicted_class"].astype("Int64")
    modalities_of = tables.rows.groupby("patient_id")["modality"].apply(lambda m: "+".join(sorted(set(m))))
    predictions["modalities"] = modalities_of.reindex(predictions.index).fillna("")
    feature_notes = predictions["warnings"].fillna("")
    predictions["warnings"] = ["; ".join(filter(None, [*tables.image_warnings.get(patient, []),
                                                       *tables.clinical_warnings.get(patient, []), note]))
                               for patient, note in zip(predictions.index, feature_notes)]
    predictions["reason"] = [
        "; ".join(tables.reasons[patient]) if patient in tables.reasons
        else ("" if pd.notna(predictions.loc[patient, "probability"])
              else f"none of the model's modalities {bundle.modalities} could be used")
        for patient in predictions.index]
    columns = ["probability", "predicted_class", *[c for c in predictions if str(c).startswith("contribution_")],
               "modalities", "warnings", "reason"]
    predictions = predictions[columns].reset_index()

    if out is not None:
        write_csv_atomic(predictions, out / "predictions.csv")
        if gradcam and bundle.tensors:
            settings = bundle.settings
            scored = tables.rows[tables.rows["patient_id"].astype(str).isin(
                predictions.loc[predictions["reason"] == "", "patient_id"])]
            overlays = write_gradcam_overlays(scored, out / "gradcam", tensors=bundle.tensors,
                                              backbone=settings.get("backbone", DEFAULT_BACKBONE),
                                              weights=settings.get("weights", "imagenet"))
            write_csv_atomic(overlays, out / "gradcam.csv")
    return predictions


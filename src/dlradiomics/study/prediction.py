"""Apply a model bundle to the patients of a manifest.

New patients go through the same steps as training patients (manifest checks, feature
extraction with the bundle's settings, the modelling table) and then the bundle's model. A patient
any of whose images fails is reported with the reason and no probability: a silent fallback to
the remaining images would give a number the reader cannot tell apart from a complete one.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from dlradiomics.io.atomic import write_csv_atomic

if TYPE_CHECKING:
    from dlradiomics.bundle import ModelBundle

logger = logging.getLogger(__name__)
PLACEHOLDER_LABEL = "benign"  # new patients have no label; validation needs one, the output drops it


def read_new_patients(manifest: str | Path):
    """Read a manifest of new patients, whose `label` column may be missing.

    Args:
        manifest: CSV or YAML manifest.

    Returns:
        `(cohort, has_labels)`.
    """
    from dlradiomics.cohort import Cohort, read_manifest, read_manifest_table

    manifest = Path(manifest)
    if manifest.suffix.lower() == ".csv":
        frame = read_manifest_table(manifest)  # refuses binary, latin-1, empty files with a clear reason
        if "label" not in frame.columns:
            frame["label"] = PLACEHOLDER_LABEL
            return Cohort.from_table(frame, manifest.parent, check_images=True, source=str(manifest)), False
    return read_manifest(manifest, check_images=True), True


def _reasons_by_patient(cohort, failures: pd.DataFrame) -> dict[str, list[str]]:
    reasons: dict[str, list[str]] = {}
    for problem in cohort.problems:
        if problem.patient_id:
            reasons.setdefault(str(problem.patient_id), []).append(f"manifest row {problem.row}, column "
                                                                    f"{problem.column}: {problem.message}")
    for _, failure in failures.iterrows():
        if pd.notna(failure["patient_id"]):
            reasons.setdefault(str(failure["patient_id"]), []).append(
                f"{failure['roi_id']}: {failure['stage']}: {failure['error']}")
    return reasons


def predict_manifest(bundle: ModelBundle, manifest: str | Path, *, out_dir: str | Path | None = None,
                     store_dir: str | Path | None = None, gradcam: bool = True) -> pd.DataFrame:
    """Predict every patient of a manifest with a bundle; see `ModelBundle.predict`.

    Args:
        bundle: the loaded bundle.
        manifest: CSV or YAML manifest of new patients.
        out_dir: where to write `predictions.csv` (and Grad-CAM overlays); None writes nothing.
        store_dir: feature cache; None uses a temporary folder.
        gradcam: write Grad-CAM overlays for deep-feature models (needs `out_dir`).

    Returns:
        One row per patient: `patient_id`, `probability`, `predicted_class`, `contribution_*`,
        `modalities`, `reason` (empty when a probability was given), and `label` when known.
    """
    from dlradiomics.models.blocks import build_model_table
    from dlradiomics.study.features import compute_feature_tables

    cohort, has_labels = read_new_patients(manifest)
    settings = bundle.metadata.get("settings", {})
    table = cohort.table[cohort.table["modality"].isin(bundle.modalities)]
    ignored = sorted(set(cohort.table["modality"]) - set(bundle.modalities))
    if ignored:
        logger.warning("modalities %s are not used by this model and are ignored", ignored)

    with tempfile.TemporaryDirectory(prefix="dlradiomics-predict-") as scratch:
        params_file = None
        if settings.get("radiomics_params") is not None:
            # The bundle keeps the complete parameter mapping; a file is used as it is, so the
            # new patients' features are computed exactly as the training features were.
            params_file = Path(scratch) / "radiomics_params.yaml"
            params_file.write_text(yaml.safe_dump(settings["radiomics_params"]), encoding="utf-8")
        features = compute_feature_tables(
            table, bundle.metadata["feature_kinds"], store_dir=Path(store_dir or Path(scratch) / "store"),
            radiomics_params=params_file, backbone=settings.get("backbone", "efficientnet_lite0"),
            weights=settings.get("weights", "imagenet"), progress=False)
    reasons = _reasons_by_patient(cohort, features.failures)

    all_patients = sorted(set(cohort.table["patient_id"].astype(str)) | set(reasons)
                          | {str(p) for p in cohort.rejected.get("patient_id", pd.Series(dtype=str)).dropna()})
    predictable = [patient for patient in all_patients if patient not in reasons]
    modalities_of = table.groupby("patient_id")["modality"].apply(lambda m: "+".join(sorted(set(m))))
    predictions = pd.DataFrame(index=pd.Index(all_patients, name="patient_id"))
    if predictable:
        good_tables = {kind: frame[frame["patient_id"].astype(str).isin(predictable)]
                       for kind, frame in features.tables.items()}
        present = [m for m in bundle.modalities if all((t["modality"] == m).any() for t in good_tables.values())]
        if present:
            # The bundle's row level, not the number of modalities present: a patient-level
            # (multimodal) model gets patient rows even for patients with one modality.
            model_table, _, _ = build_model_table(good_tables, present, bundle.metadata["feature_kinds"],
                                                  level=bundle.metadata["level"])
            predictions = predictions.join(bundle.predict_table(model_table))
    if "probability" not in predictions:
        predictions["probability"] = float("nan")
        predictions["predicted_class"] = pd.NA
    predictions["predicted_class"] = predictions["predicted_class"].astype("Int64")
    predictions["modalities"] = modalities_of.reindex(predictions.index).fillna("")
    predictions["reason"] = [
        "; ".join(reasons[patient]) if patient in reasons
        else ("" if pd.notna(predictions.loc[patient, "probability"])
              else f"none of the model's modalities {bundle.modalities} could be used")
        for patient in predictions.index]
    if has_labels:
        labels = cohort.table.groupby("patient_id")["label"].first()
        predictions["label"] = labels.reindex(predictions.index).astype("Int64")
    predictions = predictions.reset_index()

    if out_dir is not None:
        out = Path(out_dir)
        write_csv_atomic(predictions, out / "predictions.csv")
        if gradcam and bundle.tensors:
            from dlradiomics.study.explain import write_gradcam_overlays

            overlays = write_gradcam_overlays(
                table[table["patient_id"].astype(str).isin(predictable)], out / "gradcam", tensors=bundle.tensors,
                backbone=settings.get("backbone", "efficientnet_lite0"), weights=settings.get("weights", "imagenet"))
            write_csv_atomic(overlays, out / "gradcam.csv")
    return predictions

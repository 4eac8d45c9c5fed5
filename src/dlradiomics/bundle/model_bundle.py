"""`ModelBundle`: a fitted model that predicts modelling tables, saved as a folder that is data, never code.

A bundle folder holds:

- `model.skops`: the fitted estimator, written by `skops.io`; loading audits it first (see
  `dlradiomics.bundle.audit`): only the exact classes of the allowlist, or classes the caller
  names, are built; a pickle or a function is refused before anything runs.
- `weights.safetensors` (optional): network tensors such as the Grad-CAM heads.
- `bundle.json`: format version, library versions, modalities, feature kinds and columns, each
  feature's training range, each modality's training intensity profile, the frozen threshold,
  the study's settings, the SHA-256 of the files above and of itself (see `dlradiomics.bundle.metadata`).

The bundle knows tables only; turning a manifest of new patients into tables is the study
layer's job (`dlradiomics.study.prediction.predict_manifest`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlradiomics.bundle.audit import audit_model_file, load_model, resolve_trusted_classes
from dlradiomics.bundle.errors import BundleError
from dlradiomics.bundle.files import read_checked_files, sha256_bytes
from dlradiomics.bundle.metadata import (
    MAX_METADATA_BYTES,
    METADATA_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
    BundleMetadata,
    build_metadata,
    parse_metadata,
)
from dlradiomics.bundle.profiles import TrainingIntensityProfile, feature_ranges, feature_warnings
from dlradiomics.io.atomic import write_bytes_atomic
from dlradiomics.models.blocks import aggregate_by_patient
from dlradiomics.versions import library_versions

@dataclass(frozen=True)
class ModelBundle:
    """A fitted final model with everything needed to apply it to new patients' feature tables.

    Args:
        model: fitted estimator whose `predict_proba` reads a modelling table (see
            `dlradiomics.models.build_model_table`).
        metadata: the validated contents of `bundle.json`.
        tensors: network weights by name (saved with safetensors).
        path: the folder it was loaded from, if any.
    """

    model: Any
    metadata: BundleMetadata
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    @property
    def threshold(self) -> float:
        """The decision threshold frozen on training data."""
        return self.metadata.threshold

    @property
    def feature_columns(self) -> list[str]:
        """Modelling-table columns the model was fitted on, in order."""
        return list(self.metadata.feature_columns)

    @property
    def modalities(self) -> list[str]:
        """Modalities the model was trained on."""
        return list(self.metadata.modalities)

    @property
    def feature_kinds(self) -> list[str]:
        """Feature kinds (`radiomic`, `deep`) the model uses."""
        return list(self.metadata.feature_kinds)

    @property
    def level(self) -> str:
        """Rows of the modelling table: `image` or `patient`."""
        return self.metadata.level

    @property
    def settings(self) -> dict[str, Any]:
        """The study's settings recorded with the model (radiomics parameters, backbone, weights ...)."""
        return dict(self.metadata.settings)

    @property
    def intensity_profiles(self) -> dict[str, TrainingIntensityProfile]:
        """The training images' intensity profile of each modality (may be empty for table-only bundles)."""
        return dict(self.metadata.intensity_profiles)

    def predict_table(self, model_table: pd.DataFrame) -> pd.DataFrame:
        """Predict from a modelling table (index `patient_id`, `"{block}__{feature}"` columns).

        Columns of blocks a patient lacks may be absent or NaN; the model (late fusion) uses the
        blocks each patient has. Image-level rows are averaged per patient.

        Args:
            model_table: features of new patients, built like the training table.

        Returns:
            One row per patient (index `patient_id`): `probability`, `predicted_class` (at the
            frozen threshold; missing where the probability is NaN), one `contribution_{block}`
            column per block when the model reports per-block probabilities, and `warnings`:
            feature values outside the training range and values the model had to fill in.

        Raises:
            BundleError: when none of the model's feature columns is present.
        """
        present = [column for column in self.feature_columns if column in model_table.columns]
        if not present:
            raise BundleError(
                f"the table has none of the model's {len(self.feature_columns)} feature columns "
                f"(e.g. {self.feature_columns[:3]}); build it with the bundle's modalities {self.modalities}"
            )
        features = model_table.reindex(columns=self.feature_columns).astype(np.float64)
        probability = self.model.predict_proba(features)[:, 1]
        patient_ids = features.index.astype(str).to_numpy()
        result = aggregate_by_patient(probability, patient_ids).rename("probability").to_frame()
        block_aware = hasattr(self.model, "block_probabilities")
        if block_aware:
            parts = pd.DataFrame(self.model.block_probabilities(features), index=features.index)
            for block in parts.columns:
                result[f"contribution_{block}"] = aggregate_by_patient(parts[block].to_numpy(), patient_ids)
        # A patient the model cannot score (e.g. early fusion without one of its modalities) gets
        # no class: NaN >= threshold is False, which would silently call the patient benign.
        called = (result["probability"] >= self.threshold).astype("Int64")
        result["predicted_class"] = called.mask(result["probability"].isna())
        result["warnings"] = feature_warnings(features.set_axis(patient_ids), self.metadata.feature_ranges,
                                              model_handles_missing_blocks=block_aware).reindex(result.index)
        result.index.name = "patient_id"
        return result


def _model_columns_problem(model: Any, columns: Sequence[str]) -> str | None:
    """Why the model does not take exactly these columns, or None when it does."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        names = [str(name) for name in names]
        if names != list(columns):
            differing = next(k for k in range(max(len(names), len(columns)))
                             if k >= len(names) or k >= len(columns) or names[k] != columns[k])
            return (f"the model was fitted on {len(names)} columns (feature_names_in_) that differ from the "
                    f"{len(columns)} feature_columns from position {differing}")
        return None
    count = getattr(model, "n_features_in_", None)
    if count is None:
        return "the model records neither feature_names_in_ nor n_features_in_; fit it on the modelling table"
    if int(count) != len(columns):
        return f"the model was fitted on {int(count)} columns (n_features_in_), feature_columns lists {len(columns)}"
    return None


def save_bundle(path: str | Path, model: Any, *, training_table: pd.DataFrame, threshold: float,
                modalities: Sequence[str], feature_kinds: Sequence[str], level: str,
                settings: Mapping[str, Any] | None = None, tensors: Mapping[str, np.ndarray] | None = None,
                intensity_profiles: Mapping[str, TrainingIntensityProfile] | None = None,
                trusted: Sequence[str] = ()) -> Path:
    """Write a fitted model as a bundle folder.

    Args:
        path: the folder to write (created; it must not hold files other than a bundle's).
        model: fitted estimator over a modelling table.
        training_table: the modelling table the model was fitted on; its columns are the model's
            feature columns and its values give each feature's training range.
        threshold: the frozen decision threshold, in [0, 1].
        modalities: modalities the model uses.
        feature_kinds: feature kinds ("radiomic", "deep") the model uses.
        level: "image" or "patient" rows, as in `build_model_table`.
        settings: extra JSON-ready settings to record (radiomics params, backbone, weights id,
            preprocessing, configuration).
        tensors: network weights to save with safetensors.
        intensity_profiles: the training images' intensity profile per modality (see
            `dlradiomics.study.intensity`), so that prediction can flag images unlike them.
        trusted: classes of the user's own the model holds, named exactly (as `load_bundle` needs them).

    Returns:
        The bundle folder.

    Raises:
        BundleError: the model holds a type `load_bundle` would refuse, its columns disagree
            with `training_table`, a field is invalid (named), or the folder holds other files.
    """
    import skops.io
    from safetensors.numpy import save as safetensors_bytes

    folder = Path(path)
    columns = [str(column) for column in training_table.columns]
    problem = _model_columns_problem(model, columns)
    if problem:
        raise BundleError(f"{folder / MODEL_FILE}: cannot be saved: {problem}")
    payload = skops.io.dumps(model)
    audit_model_file(payload, folder / MODEL_FILE, trusted)
    contents = {MODEL_FILE: payload}
    if tensors:
        contents[WEIGHTS_FILE] = safetensors_bytes({name: np.ascontiguousarray(value) for name, value in tensors.items()})
    fields = {
        "versions": library_versions(),
        "threshold": float(threshold),
        "modalities": list(modalities),
        "feature_kinds": list(feature_kinds),
        "level": level,
        "feature_columns": columns,
        "feature_ranges": {name: (value.model_dump() if value is not None else None)
                           for name, value in feature_ranges(training_table).items()},
        "intensity_profiles": {name: profile.model_dump() for name, profile in (intensity_profiles or {}).items()},
        "files": {name: sha256_bytes(data) for name, data in contents.items()},
        "settings": dict(settings or {}),
    }
    _, text = build_metadata(fields, str(folder / METADATA_FILE))

    folder.mkdir(parents=True, exist_ok=True)
    strangers = sorted(entry.name for entry in folder.iterdir() if entry.name not in (METADATA_FILE, MODEL_FILE,
                                                                                         WEIGHTS_FILE))
    if strangers:
        raise BundleError(f"{folder}: cannot write a bundle into a folder holding other files: {strangers[:5]}")
    # bundle.json goes last and lists the hashes of the others: a bundle interrupted while being
    # written is refused on load instead of half-working.
    (folder / METADATA_FILE).unlink(missing_ok=True)
    for name in (MODEL_FILE, WEIGHTS_FILE):
        if name in contents:
            write_bytes_atomic(folder / name, contents[name])
        else:
            (folder / name).unlink(missing_ok=True)
    write_bytes_atomic(folder / METADATA_FILE, text.encode("utf-8"))
    return folder


def load_bundle(path: str | Path, *, trusted: Sequence[str] = ()) -> ModelBundle:
    """Load a bundle folder without executing code from it.

    Args:
        path: the bundle folder.
        trusted: classes of your own the model may hold, each named exactly
            (`["mypackage.models.MyClassifier"]`); never a module or a prefix.

    Returns:
        The loaded `ModelBundle`.

    Raises:
        BundleError: naming the file (and field) at fault: a missing, extra or changed file; an
            older or unknown format version; a field outside the schema; a model file that is a
            pickle, is not a skops file, or holds a type outside the allowlist and `trusted`;
            feature columns that disagree with the model.
    """
    from safetensors.numpy import load as safetensors_load

    trusted = resolve_trusted_classes(trusted)
    folder = Path(path)
    metadata_path = folder / METADATA_FILE
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a folder; a bundle is the folder runs/<timestamp>/model")
    if not metadata_path.is_file():
        raise BundleError(f"{metadata_path}: missing; is {folder} a dlradiomics bundle?")
    if metadata_path.stat().st_size > MAX_METADATA_BYTES:
        raise BundleError(f"{metadata_path}: refused: larger than {MAX_METADATA_BYTES >> 20} MiB")
    try:
        text = metadata_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise BundleError(f"{metadata_path}: not UTF-8 text ({error})") from None
    metadata = parse_metadata(text, str(metadata_path))
    contents = read_checked_files(folder, metadata.files)
    _warn_on_version_drift(metadata_path, metadata.versions)

    model = load_model(contents[MODEL_FILE], folder / MODEL_FILE, trusted)
    problem = _model_columns_problem(model, metadata.feature_columns)
    if problem:
        raise BundleError(f"{metadata_path}: refused: feature_columns: {problem}")
    if not callable(getattr(model, "predict_proba", None)):
        raise BundleError(f"{folder / MODEL_FILE}: refused: the model has no predict_proba")
    tensors: dict[str, np.ndarray] = {}
    if WEIGHTS_FILE in contents:
        try:
            tensors = safetensors_load(contents[WEIGHTS_FILE])
        except Exception as error:  # safetensors reports a damaged header with several exception types
            raise BundleError(f"{folder / WEIGHTS_FILE}: not a readable safetensors file ({error})") from None
    return ModelBundle(model=model, metadata=metadata, tensors=tensors, path=folder)


def _warn_on_version_drift(metadata_path: Path, saved: Mapping[str, str]) -> None:
    current = library_versions()
    drift = {name: (saved[name], current[name]) for name in saved
             if name in current and saved[name] != current[name]}
    if drift:
        details = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in drift.items())
        warnings.warn(f"{metadata_path}: saved with other library versions ({details}); predictions may differ",
                      UserWarning, stacklevel=3)

"""The fitted model as a folder that loads without running code from its files.

A bundle folder holds:

- `model.skops`: the fitted scikit-learn estimator (pipeline or fusion), written by `skops.io`;
  on load every type that skops does not trust by default must be in `TRUSTED_TYPES` or under
  one of `TRUSTED_MODULE_PREFIXES`, otherwise loading is refused. A pickle is refused outright.
- `weights.safetensors` (optional): network tensors such as a trained head.
- `bundle.json`: everything else as plain JSON: format version, library versions, modalities,
  feature kinds, feature columns, radiomics parameters, backbone and weights id, preprocessing,
  the frozen threshold.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlradiomics.io.atomic import write_atomic, write_bytes_atomic, write_json_atomic

BUNDLE_FORMAT_VERSION = 1
MODEL_FILE = "model.skops"
METADATA_FILE = "bundle.json"
WEIGHTS_FILE = "weights.safetensors"

# Types outside skops' defaults that a dlradiomics model legitimately contains. Anything else in a
# bundle (os.system, builtins.eval, a stranger's class) is refused, so loading cannot run their code.
TRUSTED_TYPES: frozenset[str] = frozenset({
    "numpy.dtype",
    "collections.OrderedDict",
    "sklearn.tree._tree.Tree",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
})
# Our own estimators (selectors, fusion, heads) live here; their classes are installed code.
TRUSTED_MODULE_PREFIXES: tuple[str, ...] = ("sklearn.", "dlradiomics.models.", "dlradiomics.features.deep.")


class BundleError(ValueError):
    """A bundle folder that cannot be loaded safely; the message names the file and the problem."""


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("dlradiomics", "scikit-learn", "numpy", "skops", "xgboost-cpu", "lightgbm", "torch",
                    "timm", "pyradiomics-bhklab"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def is_trusted_type(type_name: str) -> bool:
    """Whether a type named in a skops file may be loaded from a bundle."""
    return type_name in TRUSTED_TYPES or type_name.startswith(TRUSTED_MODULE_PREFIXES)


@dataclass
class ModelBundle:
    """A fitted final model with everything needed to apply it to new patients.

    Args:
        model: fitted estimator whose `predict_proba` reads a modelling table (see
            `dlradiomics.models.build_model_table`).
        metadata: the contents of `bundle.json`.
        tensors: network weights by name (saved with safetensors).
        path: the folder it was loaded from, if any.
    """

    model: Any
    metadata: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    @property
    def threshold(self) -> float:
        """The decision threshold frozen on training data."""
        return float(self.metadata["threshold"])

    @property
    def feature_columns(self) -> list[str]:
        """Modelling-table columns the model was fitted on, in order."""
        return list(self.metadata["feature_columns"])

    @property
    def modalities(self) -> list[str]:
        """Modalities the model was trained on."""
        return list(self.metadata["modalities"])

    def predict_table(self, model_table: pd.DataFrame) -> pd.DataFrame:
        """Predict from a modelling table (index `patient_id`, `"{block}__{feature}"` columns).

        Columns of blocks a patient lacks may be absent or NaN; the model (late fusion) uses the
        blocks each patient has. Image-level rows are averaged per patient.

        Args:
            model_table: features of new patients, built like the training table.

        Returns:
            One row per patient (index `patient_id`): `probability`, `predicted_class` (at the
            frozen threshold; missing where the probability is NaN) and one `contribution_{block}`
            column per block when the model reports per-block probabilities.

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
        from dlradiomics.models.blocks import aggregate_by_patient

        patient_ids = features.index.astype(str).to_numpy()
        result = aggregate_by_patient(probability, patient_ids).rename("probability").to_frame()
        if hasattr(self.model, "block_probabilities"):
            parts = pd.DataFrame(self.model.block_probabilities(features), index=features.index)
            for block in parts.columns:
                result[f"contribution_{block}"] = aggregate_by_patient(parts[block].to_numpy(), patient_ids)
        # A patient the model cannot score (e.g. early fusion without one of its modalities) gets
        # no class: NaN >= threshold is False, which would silently call the patient benign.
        called = (result["probability"] >= self.threshold).astype("Int64")
        result["predicted_class"] = called.mask(result["probability"].isna())
        result.index.name = "patient_id"
        return result

    def predict(self, manifest: str | Path, *, out_dir: str | Path | None = None,
                store_dir: str | Path | None = None, gradcam: bool = True) -> pd.DataFrame:
        """Apply the model to the patients of a manifest.

        Each patient may have any subset of the trained modalities. A patient whose images fail
        manifest checks, QA or reading gets a `reason` and no probability.

        Args:
            manifest: CSV or YAML manifest of new patients (labels may be missing).
            out_dir: where to write `predictions.csv` and Grad-CAM overlays; None writes nothing.
            store_dir: feature cache; None uses a temporary folder.
            gradcam: write Grad-CAM overlays for deep models (needs `out_dir`).

        Returns:
            One row per patient: `patient_id`, `probability`, `predicted_class`,
            `contribution_*` columns, `modalities` used, `reason` (empty when predicted).
        """
        from dlradiomics.study.prediction import predict_manifest

        return predict_manifest(self, manifest, out_dir=out_dir, store_dir=store_dir, gradcam=gradcam)


def save_bundle(path: str | Path, model: Any, *, threshold: float, feature_columns: Sequence[str],
                modalities: Sequence[str], feature_kinds: Sequence[str], level: str,
                settings: dict[str, Any] | None = None, tensors: dict[str, np.ndarray] | None = None) -> Path:
    """Write a fitted model as a bundle folder.

    Args:
        path: the folder to create (its files are overwritten).
        model: fitted estimator over a modelling table.
        threshold: the frozen decision threshold.
        feature_columns: modelling-table columns the model was fitted on.
        modalities: modalities the model uses.
        feature_kinds: feature kinds ("radiomic", "deep") the model uses.
        level: "image" or "patient" rows, as in `build_model_table`.
        settings: extra JSON-ready settings to record (radiomics params, backbone, weights id,
            preprocessing, configuration).
        tensors: network weights to save with safetensors.

    Returns:
        The bundle folder.

    Raises:
        BundleError: when the model holds a type that `load_bundle` would refuse.
    """
    import skops.io

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    payload = skops.io.dumps(model)
    refused = [name for name in skops.io.get_untrusted_types(data=payload) if not is_trusted_type(name)]
    if refused:
        raise BundleError(f"{folder / MODEL_FILE}: the model holds types a bundle may not load: {refused}")
    write_bytes_atomic(folder / MODEL_FILE, payload)
    if tensors:
        from safetensors.numpy import save_file

        arrays = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
        write_atomic(folder / WEIGHTS_FILE, lambda temporary: save_file(arrays, str(temporary)))
    metadata = {
        "format_version": BUNDLE_FORMAT_VERSION,
        "versions": _library_versions(),
        "threshold": float(threshold),
        "feature_columns": [str(column) for column in feature_columns],
        "modalities": list(modalities),
        "feature_kinds": list(feature_kinds),
        "level": level,
        "settings": settings or {},
    }
    write_json_atomic(folder / METADATA_FILE, metadata, default=str)
    return folder


def load_bundle(path: str | Path) -> ModelBundle:
    """Load a bundle folder without executing code from it.

    Args:
        path: the bundle folder.

    Returns:
        The loaded `ModelBundle`.

    Raises:
        BundleError: a file is missing, the format version is unknown, the model file is a pickle
            or not a skops file, or it holds a type outside the trusted list.
    """
    import skops.io

    folder = Path(path)
    metadata_path, model_path = folder / METADATA_FILE, folder / MODEL_FILE
    for required in (metadata_path, model_path):
        if not required.is_file():
            raise BundleError(f"{required}: missing; is {folder} a dlradiomics bundle?")
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BundleError(f"{metadata_path}: not valid JSON: {error}") from None
    if metadata.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{metadata_path}: bundle format version {metadata.get('format_version')!r}; this "
                          f"dlradiomics reads version {BUNDLE_FORMAT_VERSION}")
    _warn_on_version_drift(metadata_path, metadata.get("versions", {}))

    payload = model_path.read_bytes()
    if not zipfile.is_zipfile(model_path):
        kind = "a pickle" if payload[:1] == b"\x80" else "not a skops file"
        raise BundleError(f"{model_path}: refused: the file is {kind}; bundles load only skops files, "
                          "which cannot run code on load")
    try:
        untrusted = skops.io.get_untrusted_types(data=payload)
    except Exception as error:  # a corrupt archive surfaces as many exception types inside skops
        raise BundleError(f"{model_path}: not a readable skops file: {error}") from None
    refused = [name for name in untrusted if not is_trusted_type(name)]
    if refused:
        raise BundleError(f"{model_path}: refused: it holds types outside the trusted list: {refused}")
    model = skops.io.loads(payload, trusted=list(untrusted))

    tensors: dict[str, np.ndarray] = {}
    if (folder / WEIGHTS_FILE).is_file():
        from safetensors.numpy import load_file

        tensors = load_file(str(folder / WEIGHTS_FILE))
    return ModelBundle(model=model, metadata=metadata, tensors=tensors, path=folder)


def _warn_on_version_drift(metadata_path: Path, saved: dict[str, str]) -> None:
    current = _library_versions()
    drift = {name: (saved[name], current[name]) for name in saved
             if name in current and saved[name] != current[name]}
    if drift:
        details = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in drift.items())
        warnings.warn(f"{metadata_path}: saved with other library versions ({details}); predictions may differ",
                      UserWarning, stacklevel=3)

"""One uploaded case through the bundle's public prediction, as the viewer shows it.

The probability comes from `dlradiomics.study.prediction.predict_manifest`, the function behind
`dlradiomics predict`, run on a one-patient manifest of the uploaded files: the page and the
command line cannot give different numbers for the same files.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlradiomics.bundle import ModelBundle
from dlradiomics.cohort.labels import LABEL_NAMES
from dlradiomics.serve.profile import BLOCK_SEPARATOR, key_feature_positions, training_ranges
from dlradiomics.serve.uploads import CaseFiles
from dlradiomics.study.prediction import patient_tables, predict_manifest

CONTRIBUTION_PREFIX = "contribution_"
PREVIEW_SIZE = 320  # pixels of the longer side of a preview


@dataclass
class CaseResult:
    """What the viewer shows for one case (JSON-ready through `to_json`).

    Args:
        probability: probability of malignancy (NaN when the case could not be scored).
        predicted_class: 1 malignant / 0 benign at the frozen threshold, None when not scored.
        threshold: the bundle's frozen threshold.
        modalities_used: the uploaded modalities the model read.
        modalities_missing: the model's modalities that were not uploaded.
        parts: per block: `block`, `modality`, `kind`, `probability`, and `weight` for a weighted ensemble.
        gradcam: per deep modality: `modality`, `image` (PNG data URI), `probability` of the Grad-CAM head.
        previews: per uploaded modality: `modality`, `image` (PNG data URI of the image with the mask outline).
        features: key features against the training distribution (`FeaturePosition.to_json`).
        warnings: out-of-profile and other warnings about this case.
        notices: what the reader noted about the files.
        reason: why there is no probability (empty when there is one).
    """

    probability: float
    predicted_class: int | None
    threshold: float
    modalities_used: list[str]
    modalities_missing: list[str]
    parts: list[dict[str, Any]] = field(default_factory=list)
    gradcam: list[dict[str, Any]] = field(default_factory=list)
    previews: list[dict[str, Any]] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping; a NaN probability becomes None."""
        scored = not math.isnan(self.probability)
        return {
            "probability": self.probability if scored else None,
            "predicted_class": self.predicted_class,
            "class_name": LABEL_NAMES.get(self.predicted_class, "") if self.predicted_class is not None else "",
            "threshold": self.threshold,
            "modalities_used": self.modalities_used,
            "modalities_missing": self.modalities_missing,
            "parts": self.parts,
            "gradcam": self.gradcam,
            "previews": self.previews,
            "features": self.features,
            "warnings": self.warnings,
            "notices": self.notices,
            "reason": self.reason,
        }


def deep_modalities(bundle: ModelBundle) -> list[str]:
    """Modalities whose deep features the model reads (the parts Grad-CAM can explain)."""
    blocks = {column.split(BLOCK_SEPARATOR, 1)[0] for column in bundle.feature_columns}
    return [modality for modality in bundle.modalities if f"{modality}.deep" in blocks]


def predict_case(bundle: ModelBundle, case: CaseFiles, workdir: Path) -> CaseResult:
    """Predict one uploaded case and gather what the viewer shows.

    Args:
        bundle: the loaded model bundle.
        case: the uploaded files, checked and described by a manifest (`write_case_manifest`).
        workdir: a working folder for this case (feature store, overlays).

    Returns:
        The case's result.
    """
    explained = [modality for modality in deep_modalities(bundle) if modality in case.modalities]
    store_dir, out_dir = workdir / "store", workdir / "prediction"
    predictions = predict_manifest(bundle, case.manifest, out_dir=out_dir, store_dir=store_dir,
                                   gradcam=bool(explained and bundle.tensors))
    row = predictions.iloc[0]
    probability = float(row["probability"]) if pd.notna(row["probability"]) else math.nan
    result = CaseResult(
        probability=probability,
        predicted_class=None if pd.isna(row["predicted_class"]) else int(row["predicted_class"]),
        threshold=bundle.threshold,
        modalities_used=case.modalities,
        modalities_missing=[modality for modality in bundle.modalities if modality not in case.modalities],
        parts=_parts(bundle, row),
        gradcam=_gradcam_images(out_dir / "gradcam.csv", explained),
        previews=_previews(case),
        warnings=_prediction_warnings(row),
        notices=list(case.notices),
        reason=_user_paths(str(row.get("reason", "") or ""), case),
    )
    if not math.isnan(probability):
        values = _case_feature_values(bundle, case, store_dir)
        positions = key_feature_positions(bundle.model, training_ranges(bundle), values)
        result.features = [position.to_json() for position in positions]
    return result


def _parts(bundle: ModelBundle, row: pd.Series) -> list[dict[str, Any]]:
    weights: dict[str, float] = {}
    try:
        found = dict(getattr(bundle.model, "weights_", {}) or {})
        weights = {str(block): float(weight) for block, weight in found.items()}
    except (AttributeError, TypeError, ValueError):  # only weighted ensembles have weights
        weights = {}
    parts = []
    for column in row.index:
        if not str(column).startswith(CONTRIBUTION_PREFIX) or pd.isna(row[column]):
            continue
        block = str(column)[len(CONTRIBUTION_PREFIX):]
        modality, _, kind = block.partition(".")
        parts.append({"block": block, "modality": modality if kind else "", "kind": kind or block,
                      "probability": float(row[column]), "weight": weights.get(block)})
    if not parts and len(bundle.modalities) == 1 and pd.notna(row["probability"]):
        # A single-block model: its one part is the whole probability.
        kinds = "+".join(bundle.feature_kinds)
        parts.append({"block": f"{bundle.modalities[0]}.{kinds}", "modality": bundle.modalities[0], "kind": kinds,
                      "probability": float(row["probability"]), "weight": None})
    return parts


def _prediction_warnings(row: pd.Series) -> list[str]:
    # The prediction table may carry warning columns (out-of-profile inputs); show every non-empty one.
    messages = []
    for column in row.index:
        if "warning" in str(column).lower() and pd.notna(row[column]) and str(row[column]).strip():
            messages += [part.strip() for part in str(row[column]).split(";") if part.strip()]
    return messages


def _user_paths(message: str, case: CaseFiles) -> str:
    # Messages from prediction name the temporary files; the folder adds nothing for the user.
    return message.replace(str(case.manifest.parent) + "/", "")


def _png_data_uri(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _gradcam_images(table_path: Path, modalities: list[str]) -> list[dict[str, Any]]:
    from PIL import Image

    if not modalities or not table_path.is_file():
        return []
    overlays = pd.read_csv(table_path)
    images = []
    for _, overlay in overlays.iterrows():
        if overlay["modality"] not in modalities or pd.isna(overlay.get("path")):
            continue
        head_probability = overlay.get("probability")
        with Image.open(overlay["path"]) as picture:
            images.append({"modality": overlay["modality"], "image": _png_data_uri(picture.convert("RGB")),
                           "probability": float(head_probability) if pd.notna(head_probability) else None})
    return images


def _previews(case: CaseFiles) -> list[dict[str, Any]]:
    """Each uploaded image with its mask's outline, so the user sees that the right pair was read."""
    from PIL import Image
    from skimage.segmentation import find_boundaries

    from dlradiomics.io import load_roi

    manifest = pd.read_csv(case.manifest)
    previews = []
    for _, row in manifest.iterrows():
        roi = load_roi(row["image"], row["mask"])
        low, high = np.percentile(roi.image, [1, 99])
        grey = np.clip((roi.image - low) / (high - low or 1.0) * 255, 0, 255).astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=2)
        rgb[find_boundaries(roi.mask.astype(bool), mode="inner")] = (255, 200, 0)
        picture = Image.fromarray(rgb)
        picture.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
        previews.append({"modality": row["modality"], "image": _png_data_uri(picture)})
    return previews


def _case_feature_values(bundle: ModelBundle, case: CaseFiles, store_dir: Path) -> dict[str, float]:
    """The case's modelling-table values, as prediction built them (its features are in the store now).

    Only radiomic features are placed against the training distribution: they have names a reader
    can interpret; deep parts are explained by Grad-CAM instead.
    """
    if "radiomic" not in bundle.feature_kinds:
        return {}
    model_table = patient_tables(bundle, case.manifest, store_dir=store_dir).model_table
    if model_table is None or model_table.empty:
        return {}
    return {str(column): float(value) for column, value in model_table.iloc[0].items()
            if str(column).split(BLOCK_SEPARATOR, 1)[0].endswith(".radiomic")}

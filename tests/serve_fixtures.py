"""A small real model bundle for the case-viewer tests: US only, radiomic features, logistic regression."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dlradiomics.demo.demo import DEMO_MANIFEST
from dlradiomics.study.study import Study

N_PER_CLASS = 8


@dataclass(frozen=True)
class ViewerBundle:
    """The bundle, its training rows and store, and one held-out patient's image and mask."""

    path: Path
    training: pd.DataFrame
    store: Path
    image: Path
    mask: Path
    folder: Path


def _absolute(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("image", "mask"):
        frame[column] = [str(DEMO_MANIFEST.parent / path) for path in frame[column]]
    return frame


@pytest.fixture(scope="session")
def viewer_bundle(tmp_path_factory) -> ViewerBundle:
    """Train the bundle once per session from the embedded demo images (about 20 s on two busy cores)."""
    folder = tmp_path_factory.mktemp("viewer-bundle")
    us = pd.read_csv(DEMO_MANIFEST)
    us = us[us["modality"] == "US"]
    training = _absolute(pd.concat([us[us["label"] == label].head(N_PER_CLASS) for label in (0, 1)]))
    training.to_csv(folder / "train.csv", index=False)
    held_out = _absolute(us[~us["patient_id"].isin(training["patient_id"])]).iloc[0]
    study = {"name": "viewer", "cohort": {"manifest": "train.csv", "modalities": ["US"]},
             "classifiers": ["logistic"], "feature_sources": ["radiomic"], "fusion": ["single"],
             "cv": {"outer_folds": 2, "inner_folds": 2},
             "report": {"bootstrap": 10, "gradcam_examples": 0, "canary": False}}
    (folder / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    result = Study.from_yaml(folder / "study.yaml").run(progress=False)
    return ViewerBundle(path=Path(result.bundle_path), training=training, store=folder / "feature-store",
                        image=Path(held_out["image"]), mask=Path(held_out["mask"]), folder=folder)


def write_manifest(folder: Path, image: Path, mask: Path) -> Path:
    """A one-patient manifest of new-patient files (no label), as a user would write for `predict`."""
    path = folder / "new_patient.csv"
    pd.DataFrame([{"patient_id": "new", "modality": "US", "image": str(image), "mask": str(mask)}]).to_csv(
        path, index=False)
    return path

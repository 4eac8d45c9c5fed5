"""The embedded demo: a small synthetic multimodal cohort shipped with the package, run to a report.

The data (`demo/data/`, see its README for sources, licences and citations) pair ultrasound,
mammography and MRI images of *different people* with the same label into synthetic patients.
The report says so in its first sentence: the demo shows the mechanics, not a clinical result.
"""

from __future__ import annotations

from pathlib import Path

from dlradiomics.io.atomic import write_yaml_atomic
from dlradiomics.study.study import Study

DEMO_DATA = Path(__file__).with_name("data")
DEMO_MANIFEST = DEMO_DATA / "manifest.csv"
DEMO_OPENING = ("Modalities are paired across different people; this demonstrates the mechanics of fusion and "
                "says nothing clinical. The cohort is synthetic: 40 BUS-BRA ultrasound images (20 benign, 20 "
                "malignant patients), 30 of them given the mammography crop (mini-MIAS) of a different person with "
                "the same label, so 10 patients lack mammography and late fusion uses what each has. The shipped "
                "BreastDM MRI slices are left out of this run: with 4 benign MRI patients, nested inner "
                "cross-validation cannot have both classes in every fold.")
# A reduced grid keeps the demo within minutes on two cores; a real study uses the defaults.
DEMO_STUDY = {
    "name": "embedded demo (synthetic multimodal cohort)",
    "cohort": {"manifest": str(DEMO_MANIFEST), "modalities": ["US", "MG"]},
    "deep": {"backbone": "efficientnet_lite0", "weights": "imagenet", "pca_components": 8},
    "classifiers": ["logistic"],
    "feature_sources": ["radiomic", "deep", "dlr"],
    "fusion": ["single", "ensemble"],
    "cv": {"outer_folds": 4, "inner_folds": 3, "repeats": 1, "seed": 7},
    "report": {"bootstrap": 200, "gradcam_examples": 6, "canary": True, "note": DEMO_OPENING},
    "output": "output",
    "store": "feature-store",
    "n_jobs": 2,
}


def write_demo_study(out_dir: str | Path) -> Path:
    """Write the demo's study file into a folder.

    Args:
        out_dir: the folder (created if needed); runs and the feature store go under it.

    Returns:
        The study file's path.
    """
    return write_yaml_atomic(Path(out_dir) / "demo_study.yaml", DEMO_STUDY,
                             header="# The embedded demo's study file (written by `dlradiomics demo`).\n")


def run_demo(out_dir: str | Path = "demo-output", *, progress: bool = True):
    """Run the embedded demo study to a report.

    Args:
        out_dir: folder for the study file, the runs and the feature store.
        progress: show progress bars.

    Returns:
        The `dlradiomics.study.run.StudyResult`.
    """
    return Study.from_yaml(write_demo_study(out_dir)).run(progress=progress)

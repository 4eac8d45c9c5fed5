"""The Python API, for notebooks: the same as the command line.

Example:
    >>> from dlradiomics.api import Study, load_bundle, predict_manifest
    >>> result = Study.from_yaml("study.yaml").run()                  # doctest: +SKIP
    >>> bundle = load_bundle(result.bundle_path)                       # doctest: +SKIP
    >>> predictions = predict_manifest(bundle, "new_patients.csv")     # doctest: +SKIP
"""

from dlradiomics.bundle import BundleError, ModelBundle, load_bundle, save_bundle
from dlradiomics.demo.demo import run_demo
from dlradiomics.study.prediction import predict_manifest
from dlradiomics.study.run import StudyResult
from dlradiomics.study.settings import StudySettings, StudySettingsError, write_example_study
from dlradiomics.study.study import Study

__all__ = [
    "BundleError",
    "ModelBundle",
    "Study",
    "StudyResult",
    "StudySettings",
    "StudySettingsError",
    "load_bundle",
    "predict_manifest",
    "run_demo",
    "save_bundle",
    "write_example_study",
]

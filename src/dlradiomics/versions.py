"""The versions of Python and of every package that can change a result, for provenance records.

A leaf: it imports nothing of the package, so feature extraction, the run folder and the bundle
record the same list (see docs/architecture.md).
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

# Distribution names (as pip knows them) of everything that shapes features, models or their files.
RECORDED_PACKAGES = (
    "dlradiomics", "numpy", "scipy", "pandas", "scikit-learn", "xgboost-cpu", "lightgbm",
    "pyradiomics-bhklab", "SimpleITK", "PyWavelets", "torch", "torchvision", "timm", "grad-cam",
    "skops", "safetensors",
)


def library_versions() -> dict[str, str]:
    """Versions of Python and of the installed `RECORDED_PACKAGES` (a package not installed is left out).

    Returns:
        ``{"python": "3.11.9", "numpy": "2.4.6", ...}``.
    """
    versions = {"python": platform.python_version()}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions

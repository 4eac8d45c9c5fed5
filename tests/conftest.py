"""Shared fixtures: the public data sets beside the repository (CI has them; a user's clone may not)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def _data_dir(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"public data set {name!r} not found at {path} (it is beside the repository in CI)")
    return path


@pytest.fixture(scope="session")
def bus_bra_dir() -> Path:
    """BUS-BRA ultrasound: ../shared/data/bus-bra."""
    return _data_dir("bus-bra")


@pytest.fixture(scope="session")
def mini_mias_dir() -> Path:
    """mini-MIAS mammography: ../shared/data/mini-mias."""
    return _data_dir("mini-mias")


@pytest.fixture(scope="session")
def breastdm_dir() -> Path:
    """BreastDM MRI sample slices: ../shared/data/breastdm-mri-samples."""
    return _data_dir("breastdm-mri-samples")


@pytest.fixture(scope="session")
def ibsi_phantom_dir() -> Path:
    """The IBSI 1 digital phantom: ../shared/data/ibsi-phantom."""
    return _data_dir("ibsi-phantom")

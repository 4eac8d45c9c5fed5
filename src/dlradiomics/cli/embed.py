"""`dlradiomics embed`: see the module that implements it."""

from dlradiomics.cli import app  # noqa: F401

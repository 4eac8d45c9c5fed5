"""The one error a bundle raises."""

from __future__ import annotations


class BundleError(ValueError):
    """A bundle that cannot be saved or loaded safely; the message names the file, the field and the problem."""

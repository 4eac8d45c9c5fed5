"""The `dlradiomics` command's entry point: the app, then an exit that skips a last walk of every object."""

from __future__ import annotations

import gc

from dlradiomics.cli.app import app


def run() -> None:
    """Run the command line (console script ``dlradiomics`` and ``python -m dlradiomics.cli``)."""
    try:
        app(prog_name="dlradiomics")
    finally:
        # At exit, Python's collector walks every object once more: with torch, torchvision and
        # skops loaded that is 1.1-1.4 CPU-s per command (0.25 with the objects frozen). The
        # command's outputs are written and closed by now; the exit handlers (loky's worker
        # shutdown, temporary folders, logging) and finalizers run as usual. Freezing only
        # moves the objects out of the collector's sight.
        gc.freeze()

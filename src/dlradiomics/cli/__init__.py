"""The `dlradiomics` command line. Each command lives in its own module and stays thin.

Every command runs inside one error boundary (:mod:`dlradiomics.cli.boundary`): a known problem
prints what is wrong and how to fix it (exit status 2), an unexpected one a single line and the
path of its crash log (exit status 3); ``--debug`` shows the traceback instead.
"""

from dlradiomics.cli.app import app

# Registering the commands: each module adds its commands to `app` on import.
from dlradiomics.cli import qa, extract, embed, gradcam, study, weights, serve, docs  # noqa: E402,F401

__all__ = ["app"]

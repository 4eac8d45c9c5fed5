"""`python -m dlradiomics.cli ...`: the same as the `dlradiomics` command."""

from dlradiomics.cli import app

app(prog_name="dlradiomics")

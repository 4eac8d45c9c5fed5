"""`python -m dlradiomics.cli ...`: the same as the `dlradiomics` command."""

from dlradiomics.cli.entry import run

run()

"""The `dlradiomics` command line. Each command lives in its own module and stays thin."""

import typer

app = typer.Typer(
    name="dlradiomics",
    help="Deep learning radiomics for breast tumours: manifests, QA, radiomic and deep features, "
    "leakage-free modelling, reports and predictions.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Deep learning radiomics for breast tumours (run a command with --help for its options)."""
    # An explicit callback keeps every command a named subcommand, even while only one is registered.

# Registering the commands: each module adds its commands to `app` on import.
from dlradiomics.cli import qa, extract, embed, gradcam, study, weights  # noqa: E402,F401

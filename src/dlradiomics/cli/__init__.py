"""The `dlradiomics` command line. Each command lives in its own module and stays thin.

Every command runs inside one error boundary (:mod:`dlradiomics.cli.boundary`): a known problem
prints what is wrong and how to fix it (exit status 2), an unexpected one a single line and the
path of its crash log (exit status 3); ``--debug`` shows the traceback instead.
"""

import typer

from dlradiomics.cli.boundary import GuardedGroup, enable_debug

app = typer.Typer(
    name="dlradiomics",
    cls=GuardedGroup,
    help="Deep learning radiomics for breast tumours: manifests, QA, radiomic and deep features, "
    "leakage-free modelling, reports and predictions.",
    epilog="Exit status: 0 done; 1 problems found where a command was asked to fail on them (--strict, "
    "manifest check); 2 a known problem (the message says what to fix); 3 an unexpected error (a crash log "
    "is written; --debug shows the traceback); 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _print_version(requested: bool) -> None:
    if requested:
        from dlradiomics import __version__

        typer.echo(f"dlradiomics {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of any error (also: "
                               "DLRADIOMICS_DEBUG=1)."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Deep learning radiomics for breast tumours (run a command with --help for its options)."""
    # An explicit callback keeps every command a named subcommand, even while only one is registered.
    enable_debug(debug)


# Registering the commands: each module adds its commands to `app` on import.
from dlradiomics.cli import qa, extract, embed, gradcam, study, weights, serve, docs  # noqa: E402,F401

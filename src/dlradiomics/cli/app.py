"""The `dlradiomics` Typer application and its global options; commands register on it.

It lives apart from `dlradiomics.cli` (which imports every command module to register it) so that a
command module imports the application without importing its own importer.
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

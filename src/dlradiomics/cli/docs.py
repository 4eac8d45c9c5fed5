"""`dlradiomics docs`: print a documentation page shipped with the package (the manifest format ...)."""

from __future__ import annotations

from typing import Optional

import typer

from dlradiomics.cli.app import app


@app.command()
def docs(topic: Optional[str] = typer.Argument(None, help="The page to print, e.g. manifest; none lists them.")
         ) -> None:
    """Print a documentation page shipped with the package (Markdown), e.g. `dlradiomics docs manifest`."""
    from dlradiomics.docs import available_topics, read_topic

    if topic is None:
        typer.echo("pages: " + ", ".join(available_topics()) + "\nprint one with: dlradiomics docs PAGE")
        return
    try:
        typer.echo(read_topic(topic))
    except KeyError as error:
        typer.echo(str(error.args[0]), err=True)
        raise typer.Exit(2) from None

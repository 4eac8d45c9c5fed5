"""`dlradiomics serve`: the case viewer, a local web page for one model bundle (see dlradiomics.serve)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import typer

from dlradiomics.cli.app import app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@app.command()
def serve(
    bundle: Path = typer.Argument(..., help="A model bundle folder (runs/<timestamp>/model)."),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on. The default is reachable from "
                             "this computer only; another address lets others upload images to it."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Start a local case viewer web page: upload an image and mask per modality, see the model's answer.

    The page shows the probability, the class at the frozen threshold, each modality's part, Grad-CAM for deep parts, the key features against the training distribution and any warning. It loads nothing from the network. Stop it with Ctrl+C.
    """  # noqa: E501  (one line per paragraph: the help screen wraps it to the terminal)
    import warnings

    import uvicorn

    from dlradiomics.bundle import BundleError, load_bundle
    from dlradiomics.serve import create_app

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = load_bundle(bundle)
    except BundleError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    notices = [str(warning.message) for warning in caught]
    for notice in notices:
        typer.echo(f"warning: {notice}", err=True)
    if not _is_loopback(host):
        typer.echo(f"warning: listening on {host}: anyone who can reach this address can upload images and use "
                   "the model", err=True)
    typer.echo(f"dlradiomics case viewer for {bundle}: http://{_url_host(host)}:{port}/  (Ctrl+C stops it)")
    uvicorn.run(create_app(loaded, notices=notices), host=host, port=port, log_level="warning")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

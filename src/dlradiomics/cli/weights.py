"""`dlradiomics weights`: store torchvision's ImageNet checkpoints with their SHA-256 (see features.deep.weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlradiomics.cli.app import app

weights_app = typer.Typer(
    help="ImageNet weights for the CNN backbones: download (needs internet), add a file fetched elsewhere, list.",
    no_args_is_help=True,
)
app.add_typer(weights_app, name="weights")

_DIR_HELP = ("Weights folder. Default: $DLRADIOMICS_WEIGHTS, else ~/.cache/dlradiomics/weights. "
             "Studies read it from deep.weights_dir.")


@weights_app.command("download")
def download(
    names: list[str] = typer.Argument(..., help="Backbones: resnet50, resnet101, vgg19, googlenet, inception_v3."),
    weights_dir: Optional[Path] = typer.Option(None, "--dir", help=_DIR_HELP),
) -> None:
    """Download torchvision's ImageNet checkpoints of NAMES and record each file's SHA-256 in weights.json.

    Each file is checked against the hash prefix in torchvision's file name before it is stored; later loads refuse a file whose SHA-256 differs from the record. Copy the folder to offline machines.
    """  # noqa: E501  (one line per paragraph: the help screen wraps it to the terminal)
    from dlradiomics.features.deep.weights import download_weights, weight_file

    _check_names(names, weight_file)
    for name in names:
        # A failed download or hash check is a BackboneWeightsError: the command boundary prints it.
        typer.echo(f"{name}: stored {download_weights(name, weights_dir)}")


@weights_app.command("add")
def add(
    name: str = typer.Argument(..., help="Backbone whose checkpoint FILE is, e.g. resnet50."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="torchvision's checkpoint, fetched elsewhere."),
    weights_dir: Optional[Path] = typer.Option(None, "--dir", help=_DIR_HELP),
) -> None:
    """Copy torchvision's checkpoint of NAME (fetched on another machine) into the store and record its SHA-256.

    The file must be torchvision's own (its SHA-256 must start with the prefix in torchvision's file name, e.g. resnet50-0676ba61.pth). For other weights, pass the file itself as the backbone's weights.
    """  # noqa: E501
    from dlradiomics.features.deep.weights import add_weights_file, weight_file

    _check_names([name], weight_file)
    typer.echo(f"{name}: stored {add_weights_file(name, file, weights_dir)}")


@weights_app.command("list")
def list_weights(weights_dir: Optional[Path] = typer.Option(None, "--dir", help=_DIR_HELP)) -> None:
    """Show each backbone's weights: ok (stored and recorded), missing, unrecorded, or bundled with a package."""
    from dlradiomics.features.deep.weights import WeightStore

    store = WeightStore(weights_dir)
    typer.echo(f"weights folder: {store.root}")
    for row in store.status():
        typer.echo(f"  {row['backbone']:<20} {row['state']:<11} {row['file']}")


def _check_names(names: list[str], weight_file) -> None:
    for name in names:
        try:
            weight_file(name)
        except ValueError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from error

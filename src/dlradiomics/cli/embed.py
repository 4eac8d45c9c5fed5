"""`dlradiomics embed`: CNN embeddings of every ROI in a manifest (see dlradiomics.features.deep)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlradiomics.cli.app import app
from dlradiomics.features.defaults import DEFAULT_BACKBONE


@app.command()
def embed(
    manifest: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Cohort manifest (CSV or YAML): one row per image with its mask and label."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for deep_BACKBONE.parquet, failures.csv, provenance.json."),
    backbone: str = typer.Option(DEFAULT_BACKBONE, "--backbone", "-b", help="efficientnet_lite0 (the default, as "
                                 "in studies: its ImageNet weights ship offline), resnet50 (the paper's), resnet101, "
                                 "vgg19, googlenet or inception_v3 (first: `dlradiomics weights download`)."),
    weights: str = typer.Option("imagenet", "--weights", help="imagenet, none (random, seeded) or a state-dict PATH."),
    store: Optional[Path] = typer.Option(None, "--store", help="Feature store folder (cache shared between runs). "
                                         "Default: OUT/store."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="ROIs per forward pass."),
    margin: float = typer.Option(0.1, "--margin", min=0.0, help="Crop margin around the lesion's bounding box, as "
                                 "a fraction of its size on each side."),
    device: Optional[str] = typer.Option(None, "--device", help="cuda or cpu. Default: CUDA when available."),
    save_crops: bool = typer.Option(False, "--save-crops", help="Also save each network input crop as PNG in OUT/crops."),
    strict: bool = typer.Option(False, "--strict", help="Exit with status 1 if any ROI failed."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the count of ROIs embedded and the time left."),
) -> None:
    """Embed every ROI of MANIFEST with a frozen ImageNet CNN (global-average-pool output), reusing the store.

    One row per ROI: roi_id, patient_id, modality, image, mask, label, then deep_0000... An ROI that cannot be read or cropped is listed in OUT/failures.csv and the rest goes on.
    """  # noqa: E501  (one line per paragraph: the help screen wraps it to the terminal)
    from dlradiomics.cli.boundary import prepare_output_folder
    from dlradiomics.cohort import read_manifest
    from dlradiomics.features.deep.embeddings import compute_embeddings, embedding_failures, write_embeddings
    from dlradiomics.study.preflight import check_backbone, check_output_folder

    cohort = read_manifest(manifest)
    cohort.raise_for_file_problems()
    network = check_backbone(backbone, weights, setting="--backbone")
    out = prepare_output_folder(out)
    store_dir = check_output_folder(store if store is not None else out / "store", what="feature store (--store)")
    for problem in cohort.problems:
        typer.echo(f"skipped: {problem}", err=True)
    result = compute_embeddings(
        cohort, network, store_dir=store_dir, batch_size=batch_size, margin=margin,
        device=device, crops_dir=out / "crops" if save_crops else None, progress=progress,
    )
    paths = write_embeddings(result, out)
    failures = embedding_failures(result)
    typer.echo(f"{len(result)} ROIs embedded with {backbone} ({result.attrs['weights_id']}), "
               f"{len(failures)} failed.\nEmbeddings: {paths['embeddings']}")
    for failure in failures.itertuples():
        typer.echo(f"  failed: {failure.roi_id} (patient {failure.patient_id}, {failure.image}): {failure.error}", err=True)
    if strict and len(failures):
        raise typer.Exit(1)

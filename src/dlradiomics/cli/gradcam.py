"""`dlradiomics gradcam`: Grad-CAM overlays of a CNN with its trained head (see dlradiomics.features.deep)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlradiomics.cli import app

_HEAD_TYPE = "dlradiomics.features.deep.head.EmbeddingHeadClassifier"


@app.command()
def gradcam(
    manifest: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Cohort manifest (CSV or YAML): one row per image with its mask and label."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the overlay PNGs, gradcam.csv and head.skops."),
    backbone: str = typer.Option("resnet50", "--backbone", "-b", help="Backbone name (see `dlradiomics embed --help`)."),
    weights: str = typer.Option("imagenet", "--weights", help="imagenet, none (random, seeded) or a state-dict PATH."),
    head: Optional[Path] = typer.Option(
        None, "--head", exists=True, dir_okay=False,
        help="Trained head (head.skops written by an earlier run). Default: train one on the manifest's labels.",
    ),
    roi: Optional[list[str]] = typer.Option(None, "--roi", help="roi_id to explain (repeatable). Default: all, up to --limit."),
    limit: int = typer.Option(20, "--limit", min=1, help="Explain at most this many ROIs when --roi is not given."),
    store: Optional[Path] = typer.Option(None, "--store", help="Feature store for the embeddings. Default: OUT/store."),
    margin: float = typer.Option(0.1, "--margin", min=0.0, help="Crop margin (must match the head's training)."),
    epochs: int = typer.Option(200, "--epochs", min=1, help="Head training epochs when --head is not given."),
) -> None:
    """Grad-CAM heatmaps on the backbone's last convolutional block, over each ROI crop, with the lesion outlined.

    Writes OUT/overlays/*.png and OUT/gradcam.csv with each ROI's malignant probability and the share of the heatmap inside the lesion (compare it with lesion_area_fraction, what an even heatmap would score). Without --head, a head is trained on all the manifest's ROIs first (for looking, not for evaluation) and saved as OUT/head.skops.
    """  # noqa: E501  (one line per paragraph: the help screen wraps it to the terminal)
    import skops.io

    from dlradiomics.cohort import ManifestError, read_manifest
    from dlradiomics.features.deep.backbones import BackboneWeightsError, create_backbone
    from dlradiomics.features.deep.embeddings import compute_embeddings
    from dlradiomics.features.deep.gradcam import grad_cam_cohort
    from dlradiomics.features.deep.head import EmbeddingHeadClassifier
    from dlradiomics.features.deep.preprocessing import CropSettings

    try:
        cohort = read_manifest(manifest)
        network = create_backbone(backbone, None if weights.lower() == "none" else weights)
    except (ManifestError, BackboneWeightsError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    out.mkdir(parents=True, exist_ok=True)
    if head is not None:
        # Only our own estimator type may be rebuilt from the file: skops refuses anything else.
        fitted_head = skops.io.load(head, trusted=[_HEAD_TYPE])
    else:
        embeddings = compute_embeddings(cohort, network, store_dir=store if store is not None else out / "store",
                                        margin=margin)
        fitted_head = EmbeddingHeadClassifier(epochs=epochs).fit(embeddings.filter(regex=r"^deep_\d+$").to_numpy(),
                                                                 embeddings["label"].to_numpy())
        skops.io.dump(fitted_head, out / "head.skops")
    roi_ids = roi if roi else cohort.table["roi_id"].head(limit).tolist()
    try:
        table = grad_cam_cohort(cohort, network, fitted_head, out / "overlays", roi_ids=roi_ids,
                                settings=CropSettings(margin=margin))
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    table.to_csv(out / "gradcam.csv", index=False)
    done = table[table["error"].isna()]
    typer.echo(f"{len(done)} overlays in {out / 'overlays'}; median share of heatmap on the lesion "
               f"{done['lesion_mass_fraction'].median():.2f} (lesion area share {done['lesion_area_fraction'].median():.2f}).")
    for failed in table[table["error"].notna()].itertuples():
        typer.echo(f"  failed: {failed.roi_id} (patient {failed.patient_id}): {failed.error}", err=True)

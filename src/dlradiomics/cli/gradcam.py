"""`dlradiomics gradcam`: Grad-CAM overlays of a CNN with its trained head (see dlradiomics.features.deep)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlradiomics.cli.app import app
from dlradiomics.features.defaults import DEFAULT_BACKBONE

_HEAD_TYPE = "dlradiomics.features.deep.head.EmbeddingHeadClassifier"


@app.command()
def gradcam(
    manifest: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Cohort manifest (CSV or YAML): one row per image with its mask and label."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the overlay PNGs, gradcam.csv and head.skops."),
    backbone: str = typer.Option(DEFAULT_BACKBONE, "--backbone", "-b", help="Backbone name (see `dlradiomics embed --help`)."),
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

    from dlradiomics.cli.boundary import prepare_output_folder
    from dlradiomics.cohort import read_manifest
    from dlradiomics.features.deep.embeddings import compute_embeddings
    from dlradiomics.features.deep.gradcam import grad_cam_cohort
    from dlradiomics.features.deep.head import EmbeddingHeadClassifier
    from dlradiomics.features.deep.preprocessing import CropSettings
    from dlradiomics.io.atomic import write_atomic, write_csv_atomic
    from dlradiomics.study.preflight import PreflightError, check_backbone, check_output_folder

    cohort = read_manifest(manifest)
    cohort.raise_for_file_problems()
    unknown = sorted(set(roi or []) - set(cohort.table["roi_id"]))
    if unknown:
        raise PreflightError(f"--roi {', '.join(unknown[:5])}: no such roi_id among the manifest's usable rows "
                             f"(roi_id is patient/modality/image-stem, e.g. P1/US/scan)")
    network = check_backbone(backbone, weights, setting="--backbone")
    out = prepare_output_folder(out)
    store_dir = check_output_folder(store if store is not None else out / "store", what="feature store (--store)")
    if head is not None:
        # Only our own estimator type may be rebuilt from the file: skops refuses anything else.
        try:
            fitted_head = skops.io.load(head, trusted=[_HEAD_TYPE])
        except Exception as error:  # skops raises many types for a file that is not its own
            raise PreflightError(f"--head {head}: not a head written by `dlradiomics gradcam`: "
                                 f"{type(error).__name__}: {error}") from None
    else:
        embeddings = compute_embeddings(cohort, network, store_dir=store_dir, margin=margin)
        fitted_head = EmbeddingHeadClassifier(epochs=epochs).fit(embeddings.filter(regex=r"^deep_\d+$").to_numpy(),
                                                                 embeddings["label"].to_numpy())
        write_atomic(out / "head.skops", lambda temporary: skops.io.dump(fitted_head, temporary))
    roi_ids = roi if roi else cohort.table["roi_id"].head(limit).tolist()
    table = grad_cam_cohort(cohort, network, fitted_head, out / "overlays", roi_ids=roi_ids,
                            settings=CropSettings(margin=margin))
    write_csv_atomic(table, out / "gradcam.csv")
    done = table[table["error"].isna()]
    typer.echo(f"{len(done)} overlays in {out / 'overlays'}; median share of heatmap on the lesion "
               f"{done['lesion_mass_fraction'].median():.2f} (lesion area share {done['lesion_area_fraction'].median():.2f}).")
    for failed in table[table["error"].notna()].itertuples():
        typer.echo(f"  failed: {failed.roi_id} (patient {failed.patient_id}): {failed.error}", err=True)

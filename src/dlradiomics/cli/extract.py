"""`dlradiomics extract`: PyRadiomics features of every ROI in a manifest (see dlradiomics.features.radiomic)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlradiomics.cli.app import app

# Enough failures on screen to see what went wrong; the full list is in failures.csv.
_FAILURES_SHOWN = 20


@app.command()
def extract(
    manifest: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Cohort manifest (CSV or YAML): one row per image with its mask and label."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for radiomic_features.parquet/.csv, failures.csv and provenance.json."
    ),
    params: Optional[Path] = typer.Option(
        None, "--params", exists=True, dir_okay=False,
        help="PyRadiomics YAML parameter file. Default: the paper's 2D settings (bin width 25, 7 feature classes).",
    ),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Worker processes. Default: every core."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Dask scheduler address (tcp://host:8786) to run on a cluster instead of local processes."
    ),
    store: Optional[Path] = typer.Option(
        None, "--store", help="Feature store folder (cache shared between runs). Default: OUT/store."
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit with status 1 if any case failed."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Extract PyRadiomics features for every ROI of MANIFEST, reusing whatever the store already holds.

    A case that cannot be extracted (missing or corrupt file, wrong-size or empty mask, flat ROI) is listed in OUT/failures.csv with its reason, and the rest goes on.

    A second run computes only what is missing, so an interrupted run resumes where it stopped.
    """  # noqa: E501  (one line per paragraph: the help screen wraps it to the terminal)
    from dlradiomics.cli.boundary import prepare_output_folder
    from dlradiomics.cohort import read_manifest
    from dlradiomics.features.radiomic import extract_radiomic_features, write_extraction_outputs
    from dlradiomics.study.preflight import check_dask_scheduler, check_output_folder, check_radiomics_params

    # Everything that can fail without computing anything fails first: inputs, then where outputs go.
    cohort = read_manifest(manifest)
    cohort.raise_for_file_problems()  # no row can be trusted (a required column is missing, say)
    if params is not None:
        # the packaged defaults are valid (tests build their extractor); checking them would cost a
        # fully cached run the import of PyRadiomics, which it otherwise never needs
        check_radiomics_params(params, setting="--params")
    if scheduler is not None:
        check_dask_scheduler(scheduler)
    out = prepare_output_folder(out)
    store_dir = check_output_folder(store if store is not None else out / "store", what="feature store (--store)")
    result = extract_radiomic_features(
        cohort, store_dir, params=params, n_jobs=jobs, scheduler=scheduler, progress=progress
    )
    paths = write_extraction_outputs(result, out)

    typer.echo(
        f"{result.n_succeeded} case(s) extracted ({result.n_computed} computed, {result.n_cached} reused from "
        f"{Path(store_dir)}), {result.provenance['n_features']} features each -> {paths['features']}"
    )
    typer.echo(f"{result.n_failed} case(s) failed; the failures table is {paths['failures']}")
    for failure in result.failures.head(_FAILURES_SHOWN).itertuples():
        typer.echo(f"  - {failure.roi_id} [{failure.stage}]: {failure.error}", err=True)
    if result.n_failed > _FAILURES_SHOWN:
        typer.echo(f"  ... and {result.n_failed - _FAILURES_SHOWN} more in {paths['failures']}", err=True)
    if strict and result.n_failed:
        raise typer.Exit(1)

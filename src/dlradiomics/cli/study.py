"""`dlradiomics init`, `run`, `demo` and `predict`: a study file to a report, and a model to new patients."""

from __future__ import annotations

from pathlib import Path

import typer

from dlradiomics.cli import app


@app.command()
def init(path: Path = typer.Argument(Path("study.yaml"), help="Where to write the example study file."),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write a commented example study file to edit."""
    from dlradiomics.study.settings import write_example_study

    if path.exists() and not force:
        typer.echo(f"{path} exists; use --force to overwrite it", err=True)
        raise typer.Exit(1)
    write_example_study(path)
    typer.echo(f"wrote {path}; edit it, then: dlradiomics run {path}")


@app.command()
def run(study: Path = typer.Argument(..., help="The study YAML file."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")) -> None:
    """Run a study: QA, features, nested CV grid, final model, Grad-CAM and the report."""
    from dlradiomics.cohort import ManifestError
    from dlradiomics.study.runner import Study
    from dlradiomics.study.settings import StudySettingsError

    try:
        result = Study.from_yaml(study).run(progress=progress)
    except (StudySettingsError, ManifestError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"report: {result.report_path}\nmodel bundle: {result.bundle_path}\nrun folder: {result.run_dir}")


@app.command()
def demo(out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the demo's runs and store."),
         progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")) -> None:
    """Run the embedded demo study (offline, a few minutes on 2 cores) to a report."""
    from dlradiomics.demo.demo import run_demo

    result = run_demo(out, progress=progress)
    typer.echo(f"report: {result.report_path}\nmodel bundle: {result.bundle_path}")


@app.command()
def predict(bundle: Path = typer.Argument(..., help="A model bundle folder (runs/<timestamp>/model)."),
            manifest: Path = typer.Argument(..., help="Manifest of new patients (CSV or YAML; label optional in CSV)."),
            out: Path = typer.Option(Path("predictions"), "--out", help="Folder for predictions.csv and Grad-CAM."),
            gradcam: bool = typer.Option(True, "--gradcam/--no-gradcam", help="Write Grad-CAM overlays.")) -> None:
    """Predict new patients with a saved model: probability, class, per-modality parts, Grad-CAM."""
    from dlradiomics.bundle import BundleError, load_bundle

    try:
        loaded = load_bundle(bundle)
    except BundleError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    predictions = loaded.predict(manifest, out_dir=out, gradcam=gradcam)
    failed = predictions["reason"].astype(bool).sum()
    typer.echo(f"{len(predictions) - failed} patients predicted, {failed} with a reason instead; "
               f"see {out / 'predictions.csv'}")

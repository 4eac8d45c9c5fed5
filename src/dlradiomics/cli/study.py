"""`dlradiomics init`, `run`, `demo` and `predict`: a study file to a report, and a model to new patients."""

from __future__ import annotations

from pathlib import Path

import typer

from dlradiomics.cli.app import app


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
    """Run a study: QA, features, nested CV grid, final model, Grad-CAM and the report.

    Before any work, the study is checked as a whole (output folder writable, PyRadiomics settings, backbone and weights, modalities present, both classes, folds against patients per class); a problem stops it at once with what to change. Every manifest row the study does not use is counted and named here and in the report.
    """  # noqa: E501  (one line per paragraph: the help screen wraps it to the terminal)
    from dlradiomics.cli.boundary import note_output_folder
    from dlradiomics.study.study import Study
    from dlradiomics.study.settings import StudySettings

    settings = StudySettings.from_yaml(study)
    note_output_folder(settings.output)
    try:
        result = Study(settings).run(progress=progress)
    except BaseException:
        _name_failed_run(settings.output)
        raise
    _print_outcome(result)
    typer.echo(f"report: {result.report_path}\nrun folder: {result.run_dir}")
    if result.bundle_path is None:
        reason = result.no_model_reason or no_model_reason(result.results)
        typer.echo(f"error: the study finished without a model: {reason}. The report "
                   "lists every configuration with its note.", err=True)
        raise typer.Exit(2)
    typer.echo(f"model bundle: {result.bundle_path}")
    _print_headline(result)


def _print_headline(result) -> None:
    """The report's headline, last: the answer a user ran the study for."""
    if result.headline:
        typer.echo("\n" + "\n".join(result.headline))


def _name_failed_run(output: Path) -> None:
    """Say which run folder this process left marked failed (its run.log holds the error)."""
    import os

    from dlradiomics.study.run_folder import read_run_status

    runs = (output / "runs").glob("*") if (output / "runs").is_dir() else []
    for folder in sorted(runs, key=lambda path: path.stat().st_mtime, reverse=True):
        status = read_run_status(folder)
        if status.get("pid") == os.getpid() and status.get("status") == "failed":
            typer.echo(f"run folder: {folder} (marked failed; its run.log has the details)", err=True)
            return


def _print_outcome(result) -> None:
    """The preflight warnings and the manifest rows the study did not use."""
    from dlradiomics.study.accounting import unused_summary

    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for line in unused_summary(result.unused_rows, total_rows=result.n_manifest_rows):
        typer.echo(line, err=True)


def no_model_reason(results) -> str:
    """Why no configuration of a grid completed, from its results table (`status`, `note`)."""
    if results is None or len(results) == 0:
        return "the grid had no configuration to run"
    notes = results.get("note")
    reasons = notes.dropna().astype(str).value_counts() if notes is not None else []
    shown = "; ".join(f"{reason} ({count}x)" for reason, count in list(reasons.items())[:3])
    return f"none of its {len(results)} configuration(s) could be fitted" + (f": {shown}" if shown else "")


@app.command()
def demo(out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the demo's runs and store."),
         progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")) -> None:
    """Run the embedded demo study (offline, a few minutes on 2 cores) to a report."""
    from dlradiomics.cli.boundary import prepare_output_folder
    from dlradiomics.demo.demo import run_demo

    result = run_demo(prepare_output_folder(out), progress=progress)
    _print_outcome(result)
    typer.echo(f"report: {result.report_path}\nmodel bundle: {result.bundle_path}")
    _print_headline(result)


@app.command()
def predict(bundle: Path = typer.Argument(..., help="A model bundle folder (runs/<timestamp>/model)."),
            manifest: Path = typer.Argument(..., help="Manifest of new patients (CSV or YAML; any label column is ignored)."),
            out: Path = typer.Option(Path("predictions"), "--out", help="Folder for predictions.csv and Grad-CAM."),
            gradcam: bool = typer.Option(True, "--gradcam/--no-gradcam", help="Write Grad-CAM overlays."),
            trust: list[str] = typer.Option([], "--trust", help="A class of your own the model holds, named exactly "
                                            "(package.module.Class); repeat for each. Only for code you trust.")) -> None:
    """Predict new patients with a saved model: probability, class, per-modality parts, warnings, Grad-CAM."""
    from dlradiomics.bundle import load_bundle
    from dlradiomics.cli.boundary import prepare_output_folder
    from dlradiomics.study.prediction import predict_manifest

    # Checked before the bundle is applied: an unreadable manifest or a read-only --out fails now.
    loaded = load_bundle(bundle, trusted=trust)
    _check_new_patients_manifest(manifest)
    prepare_output_folder(out)
    predictions = predict_manifest(loaded, manifest, out_dir=out, gradcam=gradcam)
    failed = int(predictions["reason"].astype(bool).sum())
    warned = int((predictions["warnings"].astype(bool) & ~predictions["reason"].astype(bool)).sum())
    typer.echo(f"{len(predictions) - failed} patients predicted ({warned} with warnings), {failed} with a reason "
               f"instead; see {out / 'predictions.csv'}")
    for row in predictions[predictions["reason"].astype(bool)].itertuples():
        typer.echo(f"  no prediction for patient {row.patient_id}: {row.reason}", err=True)


def _check_new_patients_manifest(manifest: Path) -> None:
    """The manifest is a readable table with the columns of new patients (a label is optional)."""
    from dlradiomics.cohort import ManifestError, read_manifest_table
    from dlradiomics.cohort.validation import column_problems, normalise_columns

    problems = [problem for problem in column_problems(normalise_columns(read_manifest_table(manifest)))
                if problem.column != "label"]
    if problems:
        raise ManifestError(str(manifest), problems)

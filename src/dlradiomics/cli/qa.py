"""`dlradiomics qa` (data QA of a manifest) and `dlradiomics manifest ...` (manifests from public data)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dlradiomics.cli.app import app

manifest_app = typer.Typer(
    name="manifest",
    help="Write or check a cohort manifest: the CSV/YAML table (one row per image: patient_id, modality, "
    "image, mask, label) that every other command reads. The format: `dlradiomics docs manifest`.",
    no_args_is_help=True,
)
app.add_typer(manifest_app, name="manifest")

_OUT_HELP = "Manifest file to write (.csv, or .yaml/.yml); image paths are stored relative to its folder."
_MASK_DIR_HELP = "Folder to write the generated lesion masks into (0/255 PNG); created if needed."


_QA_HELP = (
    "Check the images and masks of MANIFEST before any modelling.\n\n"
    "For every image: can image and mask be read, do their sizes match, is the mask empty or tiny, "
    "does the lesion fall apart into several regions or touch the border, is the ROI flat. "
    "Across the cohort: the same image (exact pixel hash) or a near-identical one (perceptual hash) "
    "under two patients or two labels, which would leak between folds. "
    "Bad cases are recorded, never fatal. Flags are for review: look at the pairs before removing anything."
)


@app.command(help=_QA_HELP)
def qa(
    manifest: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Cohort manifest (CSV or YAML): one row per image with its mask and label."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder for qa.csv (one row per image), qa_duplicates.csv and qa_summary.md."
    ),
    tiny_mask_pixels: int = typer.Option(32, min=1, help="Flag lesions with fewer pixels than this as tiny_mask."),
    near_duplicate_distance: int = typer.Option(
        4, min=0, max=64, help="Largest perceptual-hash distance (of 64 bits) at which two images count as near-duplicates."
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes for the per-image checks."),
    strict: bool = typer.Option(False, "--strict", help="Exit with status 1 if any row is flagged or the manifest has problems."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the count of images checked and the time left."),
) -> None:
    """Run data QA on a manifest and write the table and summary (help text: ``_QA_HELP``)."""
    from dlradiomics.cli.boundary import prepare_output_folder
    from dlradiomics.cohort import read_manifest
    from dlradiomics.cohort.qa import run_qa, write_qa_report

    cohort = read_manifest(manifest)
    cohort.raise_for_file_problems()
    folder = prepare_output_folder(out)  # a read-only --out fails now, not after the checks
    table, summary = run_qa(
        cohort, tiny_mask_pixels=tiny_mask_pixels, near_duplicate_distance=near_duplicate_distance, n_jobs=jobs,
        progress=progress,
    )
    paths = write_qa_report(table, summary, folder)
    typer.echo(
        f"QA of {summary.n_rows} images ({summary.n_patients} patients): {summary.n_flagged} flagged, "
        f"{len(summary.manifest_problems)} manifest problem(s)."
    )
    for flag, count in summary.flag_counts.items():
        typer.echo(f"  {flag}: {count}")
    _name_rows(cohort, table)
    typer.echo(f"Table: {paths['table']}\nSummary: {paths['summary']}")
    if strict and (summary.n_flagged or summary.manifest_problems):
        raise typer.Exit(1)


# Flags that mean a row cannot be used as it is (not those that merely ask for a look).
_BLOCKING_FLAGS = ("unreadable_image", "unreadable_mask", "size_mismatch", "empty_mask", "label_missing", "bad_slice",
                   "mask_is_image", "swapped_image_mask", "full_frame_mask", "inverted_mask", "non_finite_pixels",
                   "flat_image", "flat_roi", "duplicate_across_patients", "near_duplicate_across_patients", "qa_error")
_ROWS_NAMED = 50


def _name_rows(cohort, table) -> None:
    """Name each manifest problem and each row with a blocking flag (the first 50 of each)."""
    from dlradiomics.cohort.qa import flag_column

    problems = cohort.problems
    row_of = dict(zip(cohort.table["roi_id"], cohort.source_rows)) if len(cohort.source_rows) else {}
    for problem in problems[:_ROWS_NAMED]:
        typer.echo(f"  left out: {problem}", err=True)
    if len(problems) > _ROWS_NAMED:
        typer.echo(f"  ... and {len(problems) - _ROWS_NAMED} more manifest problems in qa_summary.md", err=True)
    blocking = [row for row in table.itertuples()
                if set(str(row.flags).split(";")) & set(_BLOCKING_FLAGS)]
    for row in blocking[:_ROWS_NAMED]:
        detail = f": {row.error}" if isinstance(row.error, str) and row.error else ""
        flags = str(row.flags).split(";")
        typer.echo(f"  flagged: row {row_of.get(row.roi_id, '?')}, patient {row.patient_id}, column "
                   f"{flag_column(flags[0])} ({row.roi_id}) [{row.flags}]{detail}", err=True)
    if len(blocking) > _ROWS_NAMED:
        typer.echo(f"  ... and {len(blocking) - _ROWS_NAMED} more flagged rows in qa.csv", err=True)


@manifest_app.command(
    "check",
    help="Validate MANIFEST and list every problem at once (row, patient, column, what is wrong). "
    "Exits with status 1 when a row has a problem, 2 when the file itself cannot be used.",
)
def check_manifest(
    manifest: Path = typer.Argument(..., exists=True, dir_okay=False, help="Manifest to validate (CSV or YAML)."),
    check_images: bool = typer.Option(
        False, "--check-images", help="Also open every image and mask (finds corrupt files, wrong-size or empty masks)."
    ),
) -> None:
    """Validate a manifest and print its problems."""
    from dlradiomics.cohort import read_manifest

    cohort = read_manifest(manifest, check_images=check_images)
    cohort.raise_for_file_problems()  # no row can be judged: one message, status 2 like an unreadable file
    typer.echo(f"{manifest}: {len(cohort)} good rows, {cohort.n_patients} patients, {len(cohort.rejected)} rejected rows.")
    for problem in cohort.problems:
        typer.echo(f"  - {problem}")
    if cohort.problems:
        raise typer.Exit(1)


@manifest_app.command("bus-bra")
def bus_bra(
    root: Path = typer.Argument(..., exists=True, file_okay=False, help="BUS-BRA folder (bus_data.csv, Images/, Masks/)."),
    out: Path = typer.Option(..., "--out", "-o", help=_OUT_HELP),
) -> None:
    """Manifest of BUS-BRA ultrasound: patients from Case, the published 5/10-fold splits as fold5/fold10."""
    from dlradiomics.cohort import bus_bra_manifest

    _prepare(out)
    _write(bus_bra_manifest(root), out)


@manifest_app.command("busi")
def busi(
    root: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder with benign/ and malignant/ class folders."),
    out: Path = typer.Option(..., "--out", "-o", help=_OUT_HELP),
    mask_dir: Optional[Path] = typer.Option(None, "--mask-dir", help="Folder for merged masks of images with several masks."),
) -> None:
    """Manifest of a BUSI-style layout (name.png + name_mask.png); normal/ is left out, several masks merged."""
    from dlradiomics.cohort import busi_manifest

    masks = _prepare(out, mask_dir if mask_dir is not None else out.parent / "busi_masks")
    _write(busi_manifest(root, masks), out)


@manifest_app.command("mini-mias")
def mini_mias(
    root: Path = typer.Argument(..., exists=True, file_okay=False, help="mini-MIAS folder (Info.txt, images/)."),
    out: Path = typer.Option(..., "--out", "-o", help=_OUT_HELP),
    mask_dir: Optional[Path] = typer.Option(None, "--mask-dir", help=_MASK_DIR_HELP + " Default: OUT's folder/mias_masks."),
) -> None:
    """Manifest of mini-MIAS mammograms, drawing each lesion's circle from Info.txt as a mask."""
    from dlradiomics.cohort import mini_mias_manifest

    masks = _prepare(out, mask_dir if mask_dir is not None else out.parent / "mias_masks")
    _write(mini_mias_manifest(root, masks), out)


@manifest_app.command("breastdm")
def breastdm(
    root: Path = typer.Argument(..., exists=True, file_okay=False, help="BreastDM samples folder (labels.csv, images/, masks/)."),
    out: Path = typer.Option(..., "--out", "-o", help=_OUT_HELP),
) -> None:
    """Manifest of the BreastDM MRI sample slices (each slice its own patient: smoke tests only)."""
    from dlradiomics.cohort import breastdm_manifest

    _prepare(out)
    _write(breastdm_manifest(root), out)


def _prepare(out: Path, mask_dir: Path | None = None) -> Path | None:
    """Prove the manifest's folder (and the mask folder) writable before reading a whole data set."""
    from dlradiomics.cli.boundary import prepare_output_folder

    prepare_output_folder(out.parent if str(out.parent) else Path("."), what="manifest's folder")
    return prepare_output_folder(mask_dir, what="mask folder") if mask_dir is not None else None


def _write(frame, out: Path) -> None:
    from dlradiomics.cohort import write_manifest

    path = write_manifest(frame, out)
    typer.echo(f"Wrote {len(frame)} rows ({frame['patient_id'].nunique()} patients) to {path}.")
    for item in frame.attrs.get("skipped", []):
        typer.echo(f"  skipped {item['item']}: {item['reason']}")

"""Throughput of dlradiomics' radiomic extraction against PyRadiomics called directly, both IBSI-correct.

On the first N BUS-BRA ROIs: our cohort extraction into a cold store (parallel workers), the same
extraction again in a fresh process (everything cached: startup, manifest, hashing and store read
included), and PyRadiomics' own extractor in one process reading the PNG files itself with the
same settings and handing them to PyRadiomics as one-slice volumes (``sitk.JoinSeries``), the way
whose texture features follow IBSI. Prints ROIs per second of each, their ratio, the cached re-run
time and speed-up, and the largest relative difference between the two feature tables (must be 0).

    nice -n 10 .venv/bin/python bench/radiomics_throughput.py --n 1875 --jobs 2
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUS_BRA = REPO_ROOT.parent / "shared" / "data" / "bus-bra"


def bus_bra_table(root: Path, n_rois: int) -> pd.DataFrame:
    """The first ``n_rois`` validated BUS-BRA rows."""
    from dlradiomics.cohort import Cohort
    from dlradiomics.cohort.loaders import bus_bra_manifest

    cohort = Cohort.from_table(bus_bra_manifest(root), root)
    return cohort.table.head(n_rois).reset_index(drop=True)


def direct_pyradiomics(table: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """PyRadiomics alone, one process, reading each PNG itself; returns features and seconds."""
    import SimpleITK as sitk
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    from dlradiomics.features.radiomic import DEFAULT_PARAMS_PATH

    start, cpu_start = time.perf_counter(), time.process_time()
    extractor = RadiomicsFeatureExtractor(str(DEFAULT_PARAMS_PATH))
    rows = []
    for roi in table.itertuples(index=False):
        # Float pixels: PyRadiomics' binning overflows in an 8-bit pixel type. Masks are 0/255.
        # JoinSeries: a one-slice volume, for IBSI-conformant texture matrices.
        image = sitk.JoinSeries(sitk.Cast(sitk.ReadImage(roi.image), sitk.sitkFloat32))
        result = extractor.execute(image, sitk.JoinSeries(sitk.ReadImage(roi.mask)), label=255)
        rows.append({"roi_id": roi.roi_id, **{k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}})
    return pd.DataFrame(rows), time.perf_counter() - start, time.process_time() - cpu_start


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (user + system)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def stop_worker_processes() -> None:
    """End joblib's reusable worker processes, so that their CPU time is counted as children's."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def largest_relative_difference(ours: pd.DataFrame, direct: pd.DataFrame) -> float:
    """max |ours - direct| / max(|direct|, 1e-12) over every ROI and feature both tables hold."""
    from dlradiomics.features.radiomic import radiomic_feature_columns

    features = radiomic_feature_columns(direct)
    if set(features) != set(radiomic_feature_columns(ours)):
        raise AssertionError("the two tables hold different feature lists")
    aligned = ours.set_index("roi_id").loc[direct["roi_id"], features].to_numpy(dtype=float)
    reference = direct[features].to_numpy(dtype=float)
    return float(np.max(np.abs(aligned - reference) / np.maximum(np.abs(reference), 1e-12)))


def cached_rerun_seconds(manifest: Path, store: Path, out: Path, jobs: int | None) -> float:
    """Wall time of `dlradiomics extract` in a fresh interpreter over a warm store (startup included)."""
    command = [sys.executable, "-c", "from dlradiomics.cli import app; app()", "extract", str(manifest), "--out", str(out),
               "--store", str(store), "--no-progress"] + (["--jobs", str(jobs)] if jobs else [])
    start = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if finished.returncode != 0 or "(0 computed" not in finished.stdout:
        raise AssertionError(f"cached re-run failed or recomputed:\n{finished.stdout}\n{finished.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="number of BUS-BRA ROIs (default 200)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes for our extraction (default: all cores)")
    parser.add_argument("--data", type=Path, default=DEFAULT_BUS_BRA, help="BUS-BRA folder")
    parser.add_argument("--skip-direct", action="store_true", help="time our extraction only")
    args = parser.parse_args()

    from dlradiomics.features.radiomic import extract_radiomic_features

    table = bus_bra_table(args.data, args.n)
    print(f"{len(table)} BUS-BRA ROIs, jobs={args.jobs or 'all cores'}")
    with tempfile.TemporaryDirectory(prefix="radiomics-bench-") as scratch:
        store, manifest = Path(scratch) / "store", Path(scratch) / "manifest.csv"
        table[["patient_id", "modality", "image", "mask", "label"]].to_csv(manifest, index=False)
        start, cpu_start = time.perf_counter(), cpu_seconds()
        cold = extract_radiomic_features(table, store, n_jobs=args.jobs, progress=False)
        cold_seconds = time.perf_counter() - start
        stop_worker_processes()
        cold_cpu = cpu_seconds() - cpu_start
        cached_seconds = cached_rerun_seconds(manifest, store, Path(scratch) / "out", args.jobs)

    if cold.n_failed:
        raise AssertionError(f"unexpected: {cold.n_failed} failures: {cold.failures.head()}")
    ours_rate = len(table) / cold_seconds
    print(f"dlradiomics, cold store       : {cold_seconds:8.2f} s  {ours_rate:7.1f} ROIs/s")
    print(f"dlradiomics, cached re-run    : {cached_seconds:8.2f} s  (fresh process, startup included; "
          f"{cold_seconds / cached_seconds:.0f}x faster than cold)")
    if args.skip_direct:
        return
    direct, direct_seconds, direct_cpu = direct_pyradiomics(table)
    direct_rate = len(table) / direct_seconds
    print(f"PyRadiomics direct, 1 process : {direct_seconds:8.2f} s  {direct_rate:7.1f} ROIs/s")
    print(f"ratio (ours / direct)         : {ours_rate / direct_rate:8.2f}")
    # CPU time does not depend on what else the machine runs: it bounds the ratio an idle machine
    # gives (the workers' start-up included).
    workers = args.jobs or 1
    print(f"CPU per ROI                   : ours {1000 * cold_cpu / len(table):.1f} ms (this process + "
          f"workers, start-up included), direct {1000 * direct_cpu / len(table):.1f} ms; "
          f"idle-machine bound with {workers} worker(s): {workers * direct_cpu / cold_cpu:.2f}x")
    print(f"largest relative difference   : {largest_relative_difference(cold.features, direct):.3g}")


if __name__ == "__main__":
    main()

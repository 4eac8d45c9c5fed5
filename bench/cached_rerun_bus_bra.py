"""BUS-BRA study through `dlradiomics run`: a first run with features in the store, then cached re-runs.

Issue 13 asks for a cached re-run of the BUS-BRA study in at most 10 s. This bench writes the
manifest (`dlradiomics.cohort.loaders.bus_bra_manifest`, published 5 folds) and a study file (US
only, radiomic and deep EfficientNet-Lite0 features, single-source models, the classifiers given,
publishers' folds, 3 inner folds, the permuted-label canary and an 8-case gallery), copies the
feature rows of an existing store (radiomic and deep namespaces and its file hash cache: "features
in the store") into a fresh store under ``--work``, then runs ``dlradiomics run`` in a fresh process
``1 + --cached`` times. The first ("cold") run checks every image (QA), runs the grid and its
canary and fits the final model; the others find all of that in the store. Printed per run: wall
and CPU seconds (the process and its workers) and each stage's wall seconds from the run log.

Run (from the repository root; the cold run takes minutes, the cached ones seconds)::

    PYTHONPATH=src .venv/bin/python bench/cached_rerun_bus_bra.py --data ../shared/data/bus-bra \\
        --features-store ../scratch/speed-store --work ../scratch/rerun-bench

``--reuse`` keeps ``--work``'s store as it is (every run is then a cached one, if it ran before).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from dlradiomics.cohort.loaders import bus_bra_manifest
from dlradiomics.io.atomic import write_csv_atomic
from dlradiomics.store import FILE_HASHES

STAGE_LINE = re.compile(r"stage finished: (?P<stage>.+) \((?P<wall>[\d.]+) s, (?P<cpu>[\d.]+) CPU-s\)")


def study_file(manifest: Path, classifiers: list[str], jobs: int) -> dict:
    """The study of this bench (paths relative to the study file's folder)."""
    return {
        "name": "BUS-BRA cached re-run bench",
        "cohort": {"manifest": manifest.name, "modalities": ["US"]},
        "deep": {"backbone": "efficientnet_lite0", "weights": "imagenet", "pca_components": 32},
        "classifiers": classifiers,
        "feature_sources": ["radiomic", "deep"],
        "fusion": ["single"],
        "cv": {"fold_column": "fold5", "inner_folds": 3, "seed": 0},
        "report": {"bootstrap": 500, "gradcam_examples": 8, "canary": True},
        "output": "out",
        "store": "store",
        "n_jobs": jobs,
    }


def copy_features(source: Path, store: Path) -> None:
    """A fresh store holding only the feature rows (and file hashes) of ``source``."""
    if store.exists():
        shutil.rmtree(store)
    store.mkdir(parents=True)
    for name in ("radiomic", "deep"):
        if (source / name).is_dir():
            shutil.copytree(source / name, store / name)
    if (source / FILE_HASHES).is_file():
        shutil.copy2(source / FILE_HASHES, store / FILE_HASHES)


def timed_run(study: Path) -> tuple[float, float, int, Path | None]:
    """One `dlradiomics run` in a fresh process: wall seconds, CPU seconds, exit status, run folder."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, "-m", "dlradiomics.cli", "run", str(study), "--no-progress"],
                              capture_output=True, text=True, env=os.environ)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = re.search(r"run folder: (\S+)", finished.stdout)
    if finished.returncode != 0:
        print(finished.stdout[-2000:], finished.stderr[-2000:], sep="\n")
    return wall, cpu, finished.returncode, Path(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bus-bra"))
    parser.add_argument("--features-store", type=Path, default=Path("../scratch/speed-store"),
                        help="a store holding BUS-BRA's radiomic and deep rows (copied, never written)")
    parser.add_argument("--work", type=Path, default=Path("../scratch/rerun-bench"))
    parser.add_argument("--classifiers", nargs="+", default=["logistic"])
    parser.add_argument("--cached", type=int, default=2, help="cached re-runs after the first run")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="keep --work's store (no fresh copy)")
    args = parser.parse_args()

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "bus-bra-manifest.csv"
    frame = bus_bra_manifest(args.data)
    for column in ("image", "mask"):
        frame[column] = [os.path.abspath(os.path.join(args.data, path)) for path in frame[column]]
    write_csv_atomic(frame, manifest)
    study = work / "study.yaml"
    study.write_text(yaml.safe_dump(study_file(manifest, args.classifiers, args.jobs), sort_keys=False))
    if not args.reuse:
        copy_features(args.features_store.resolve(), work / "store")

    print(f"BUS-BRA: {len(frame)} images of {frame['patient_id'].nunique()} patients; study {study}")
    for index in range(1 + args.cached):
        what = "first run (features in the store)" if index == 0 and not args.reuse else "cached re-run"
        wall, cpu, status, run_dir = timed_run(study)
        print(f"{what}: {wall:.2f} s wall, {cpu:.2f} CPU-s (exit {status})")
        if run_dir is not None and (run_dir / "run.log").is_file():
            for line in (run_dir / "run.log").read_text().splitlines():
                found = STAGE_LINE.search(line)
                if found:
                    print(f"    {found['stage'][:60]:60s} {float(found['wall']):7.2f} s")


if __name__ == "__main__":
    main()

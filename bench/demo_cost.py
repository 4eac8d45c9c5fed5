"""What the embedded demo costs: CPU seconds and wall time of `dlradiomics demo`, cold and cached.

Runs the demo twice in fresh processes: first into an empty folder (cold feature store: radiomic
and deep features extracted, grid and canary fitted), then again into the same folder (every stage
the store caches read back). Prints each run's user + system CPU seconds (the process and all
its workers, from the kernel's accounting of reaped children), wall seconds, and the run log's
per-stage wall and CPU. Issue 13's target: the cold demo under 60 CPU-seconds on 2 cores.

    .venv/bin/python bench/demo_cost.py [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGE_LINE = re.compile(r"stage finished: (?P<stage>.+) \((?P<wall>[\d.]+) s, (?P<cpu>[\d.]+) CPU-s\)")


def run_demo(out: Path) -> tuple[float, float, list[tuple[str, str, str]]]:
    """Run `dlradiomics demo --out OUT` in a fresh interpreter: (CPU seconds, wall seconds, stages)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dlradiomics.cli", "demo", "--out", str(out), "--no-progress"],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log = max((out / "output" / "runs").glob("*/run.log"))
    stages = [match.group("stage", "wall", "cpu") for match in map(STAGE_LINE.search, log.read_text().splitlines())
              if match]
    return cpu, wall, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="demo folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "demo"
        for label in ("cold store", "cached re-run"):
            cpu, wall, stages = run_demo(out)
            print(f"{label}: {cpu:.1f} CPU-s (process and workers), {wall:.1f} s wall")
            for stage, stage_wall, stage_cpu in stages:
                print(f"    {stage}: {stage_wall} s, {stage_cpu} CPU-s")


if __name__ == "__main__":
    main()

"""Audit the bundle of every configuration of the study grid against the bundle allowlist.

Fits every configuration of the grid (three sources x one and two modalities x every fusion x
the seven classifiers: 98 models) on small generated feature tables, writes each as a skops file
and lists every type it holds with its skops loader, then compares with
`dlradiomics.bundle.allowlist.allowed_types()`: types a grid model holds that the list lacks
(a bundle of that model would be refused) and listed types no grid model holds (the list could be
narrower). `tests/test_bundle_trust.py` runs the same check on one configuration per classifier,
source and fusion.

Usage: nice .venv/bin/python bench/bundle_allowlist_audit.py   (about 3 minutes on 2 busy cores)
"""

from __future__ import annotations

import io
import json
import time
import warnings
import zipfile

import numpy as np
import pandas as pd
import skops.io

from dlradiomics.bundle.allowlist import DATA_TYPES, allowed_types
from dlradiomics.bundle.audit import schema_nodes
from dlradiomics.evaluation import grid_configurations
from dlradiomics.models import (
    CLASSIFIERS,
    FUSIONS,
    SOURCES,
    CorrelationStep,
    LassoStep,
    MannWhitneyStep,
    PCAStep,
    build_estimator,
    build_model_table,
)


def feature_tables(n_patients: int = 48) -> dict[str, pd.DataFrame]:
    """Radiomic and deep image-level tables of US and MG images with a weak signal."""
    rng = np.random.default_rng(0)
    tables = {}
    for kind, width in (("radiomic", 8), ("deep", 12)):
        rows = [{"roi_id": f"p{p}/{m}/a", "patient_id": f"p{p}", "modality": m, "image": "", "mask": "",
                 "label": p % 2, **{f"f{k}": rng.normal() + (p % 2) * (k < 3) for k in range(width)}}
                for p in range(n_patients) for m in ("US", "MG")]
        tables[kind] = pd.DataFrame(rows)
    return tables


def main() -> None:
    """Fit, dump and audit every configuration; print the types and the comparison."""
    tables = feature_tables()
    to_run, _ = grid_configurations(SOURCES, [("US",), ("US", "MG")], FUSIONS, CLASSIFIERS)
    selections = {"radiomic": (MannWhitneyStep(0.5), CorrelationStep(0.9), LassoStep()),
                  "deep": (PCAStep(4),), "dlr": (PCAStep(4),)}
    held: dict[str, set[str]] = {}
    skops_untrusted: set[str] = set()
    start = time.perf_counter()
    for configuration in to_run:
        kinds = list(configuration.kinds)
        level = configuration.level
        X, y, _ = build_model_table(tables, list(configuration.modalities), kinds, level=level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build_estimator(configuration, selections=selections, dlr_components=4, inner_cv=2).fit(X, y)
        payload = skops.io.dumps(model)
        skops_untrusted.update(skops.io.get_untrusted_types(data=payload))
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            for name, loader in schema_nodes(json.loads(archive.read("schema.json"))):
                held.setdefault(name, set()).add(loader)
    print(f"{len(to_run)} configurations fitted and audited in {time.perf_counter() - start:.0f} s")
    for name in sorted(held):
        flag = "skops-untrusted" if name in skops_untrusted else ""
        print(f"  {name:70s} {', '.join(sorted(held[name])):30s} {flag}")
    allowed = allowed_types()
    missing = {name: loaders - allowed.get(name, frozenset()) for name, loaders in held.items()}
    missing = {name: loaders for name, loaders in missing.items() if loaders}
    spare = sorted(name for name in allowed if name not in DATA_TYPES and name not in held)
    print(f"held by a grid model but not allowed (would be refused): {missing or 'none'}")
    print(f"allowed but held by no grid model: {spare or 'none'}")


if __name__ == "__main__":
    main()

"""How often `predict` flags a genuine patient's features as outside the training range, on BUS-BRA.

Splits the BUS-BRA patients of a radiomic feature table (from `dlradiomics extract`) into a
training part of several sizes and 200 held-out patients, records each feature's training range
as a bundle does (`dlradiomics.bundle.profiles.feature_ranges`) and counts the held-out images
with at least one flagged value, for the margin in use and a few others. A 16-bit copy of an
8-bit image is flagged on every image (its intensities are 257 times larger).

Usage: .venv/bin/python bench/feature_range_flags.py PATH/radiomic_features.parquet
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from dlradiomics.bundle.profiles import RANGE_MARGIN, feature_ranges
from dlradiomics.models.blocks import feature_columns_of


def main() -> None:
    """Print the share of held-out images flagged per training size and margin."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features", help="radiomic_features.parquet or .csv of BUS-BRA")
    args = parser.parse_args()
    read = pd.read_parquet if args.features.endswith(".parquet") else pd.read_csv
    table = read(args.features)
    columns = feature_columns_of(table)
    patients = np.random.default_rng(0).permutation(table["patient_id"].astype(str).unique())
    held_out = table[table["patient_id"].astype(str).isin(patients[-200:])][columns].to_numpy(dtype=float)
    print(f"{len(columns)} features; 200 held-out patients ({len(held_out)} images); margin in use {RANGE_MARGIN}")
    for n_train in (16, 100, 400, 800):
        training = table[table["patient_id"].astype(str).isin(patients[:n_train])][columns]
        ranges = feature_ranges(training)
        minimum = np.array([ranges[c].minimum for c in columns])
        maximum = np.array([ranges[c].maximum for c in columns])
        shares = []
        for margin in (0.1, RANGE_MARGIN, 0.5, 1.0):
            span = margin * (maximum - minimum)
            outside = (held_out < minimum - span) | (held_out > maximum + span)
            shares.append(f"margin {margin}: {outside.any(axis=1).mean():.1%}")
        print(f"training on {n_train:4d} patients: images flagged, " + ", ".join(shares))


if __name__ == "__main__":
    main()

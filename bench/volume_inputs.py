"""Cost of the volume inputs: reading a DICOM series folder and radiomic features in 3D vs 2D.

Writes a 60-slice 256 x 256 MR series (pydicom, shuffled file names) with an ellipsoid lesion and
its NIfTI mask into a scratch folder, then prints the time to read the series, to load the ROI
volume (series + mask, geometry checked) and to extract the packaged default features in 3D
(whole volume) and in 2D (largest slice).

    PYTHONPATH=src python bench/volume_inputs.py [--out /tmp/volume-bench]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from dicom_files import write_series  # noqa: E402  (the tests' writer of real DICOM headers)

from dlradiomics.features.radiomic import extract_roi_features, extract_volume_features, load_radiomics_params  # noqa: E402
from dlradiomics.io import load_roi, load_roi_volume, read_image  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/volume-bench"))
    args = parser.parse_args()
    spacing = (3.0, 0.7, 0.7)
    rng = np.random.default_rng(0)
    stored = rng.integers(200, 800, (60, 256, 256)).astype(np.uint16)
    z, y, x = np.ogrid[:60, :256, :256]
    lesion = ((((z - 30) * spacing[0] / 12) ** 2 + ((y - 128) * spacing[1] / 15) ** 2
               + ((x - 128) * spacing[2] / 15) ** 2) <= 1).astype(np.uint8)
    stored[lesion > 0] += 300
    series = args.out / "series"
    if not series.exists():
        write_series(series, stored, spacing=spacing, origin=(0.0, 0.0, 0.0))
    mask = sitk.GetImageFromArray(lesion)
    mask.SetSpacing(tuple(reversed(spacing)))
    sitk.WriteImage(mask, str(args.out / "mask.nii.gz"))

    started = time.perf_counter()
    read_image(series)
    print(f"read a 60-slice 256 x 256 series: {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    volume = load_roi_volume(series, args.out / "mask.nii.gz")
    print(f"load_roi_volume (series + NIfTI mask, geometry checked): {time.perf_counter() - started:.2f} s; "
          f"{int(volume.mask.sum())} lesion voxels")
    params = load_radiomics_params()
    extract_volume_features(volume, params)  # builds the extractor once
    started = time.perf_counter()
    in_3d = extract_volume_features(volume, params)
    print(f"radiomic features in 3D (whole lesion): {time.perf_counter() - started:.2f} s, {len(in_3d)} features")
    plane = load_roi(series, args.out / "mask.nii.gz")
    extract_roi_features(plane, params)
    started = time.perf_counter()
    in_2d = extract_roi_features(plane, params)
    print(f"radiomic features in 2D (largest slice): {time.perf_counter() - started:.2f} s, {len(in_2d)} features")


if __name__ == "__main__":
    main()

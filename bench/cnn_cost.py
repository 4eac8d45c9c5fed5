"""What training a CNN inside the folds costs on a CPU, per ROI and per epoch, for several settings.

On ``--rois`` BUS-BRA ROIs (the first patients of the publishers' fold 1 and the rest, stratified),
with an empty temporary store so nothing is cached at the start, for each setting
(``image_size x trainable x n_last_blocks``) it times:

- preparing the crops (read PNG, crop, resize) per ROI;
- the frozen front's activations per ROI and view (once per ROI ever: cached afterwards);
- one training epoch per ROI (the back and the head, forward + backward), from the history of a
  fit with a fixed number of epochs and no early stopping;
- prediction per ROI with everything cached.

It then projects one outer fold of the full cohort (1,875 ROIs; ~1,500 training ROIs of which a
fifth validate) for a given number of epochs, cold (nothing cached) and warm (crops and
activations cached by an earlier fold or run). With ``trainable=all`` nothing but the crops can
be cached and every epoch runs the whole network.

Run (from the repository root)::

    nice -n 10 .venv/bin/python bench/cnn_cost.py --data ../shared/data/bus-bra --rois 96 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from dlradiomics.cohort import Cohort
from dlradiomics.cohort.loaders import bus_bra_manifest
from dlradiomics.features.deep import activations
from dlradiomics.features.deep.activations import front_activations, roi_crops
from dlradiomics.features.deep.backbones import create_backbone
from dlradiomics.features.deep.cnn import CnnClassifier
from dlradiomics.features.deep.stages import backbone_blocks, split_backbone

FULL_ROIS = 1875
TRAINING_SHARE = 0.8 * 0.8  # outer training fold, less the validation fifth


def sample(root: Path, n_rois: int) -> pd.DataFrame:
    cohort = Cohort.from_table(bus_bra_manifest(root), root, source=str(root))
    table = cohort.table
    per_class = n_rois // 2
    return pd.concat([rows.head(per_class) for _, rows in table.groupby("label")]).reset_index(drop=True)


def forget_memo() -> None:
    activations._MEMO = activations._BytesLRU(activations._MEMO_BYTES)


def measure(table: pd.DataFrame, image_size: int, trainable: str, n_last_blocks: int, epochs: int,
            projected_epochs: int) -> dict[str, float]:
    n = len(table)
    with tempfile.TemporaryDirectory() as store:
        forget_memo()
        backbone = create_backbone("efficientnet_lite0", "imagenet")
        started = time.perf_counter()
        roi_crops(table, input_size=image_size, store_dir=store)
        crop_s = (time.perf_counter() - started) / n
        front_s = 0.0
        if trainable != "all":
            n_back = 0 if trainable == "head" else n_last_blocks
            front, _ = split_backbone(backbone, n_back)
            started = time.perf_counter()
            front_activations(table, backbone, front, n_front_blocks=len(backbone_blocks(backbone)) - n_back,
                              input_size=image_size, views=("identity", "hflip"), store_dir=store)
            front_s = (time.perf_counter() - started) / n / 2
        model = CnnClassifier(image_size=image_size, trainable=trainable, n_last_blocks=n_last_blocks, epochs=epochs,
                              patience=epochs, validation_fraction=0, store_dir=store)
        started = time.perf_counter()
        model.fit(table.set_index("patient_id"), table["label"])
        fit_s = time.perf_counter() - started
        # Crops and both views' activations are cached above: the fit reads them and trains.
        epoch_s = fit_s / epochs / n
        started = time.perf_counter()
        model.predict_proba(table.set_index("patient_id"))
        predict_s = (time.perf_counter() - started) / n
    views = 1 if trainable == "all" else 2
    training_rois = FULL_ROIS * TRAINING_SHARE
    warm = training_rois * epoch_s * projected_epochs + FULL_ROIS * predict_s
    cold = warm + FULL_ROIS * (crop_s + front_s * views)
    return {"image_size": image_size, "trainable": trainable, "n_last_blocks": n_last_blocks,
            "crop_ms": 1000 * crop_s, "front_ms_per_view": 1000 * front_s, "epoch_ms_per_roi": 1000 * epoch_s,
            "predict_ms": 1000 * predict_s, "fold_warm_min": warm / 60, "fold_cold_min": cold / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bus-bra"))
    parser.add_argument("--rois", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per setting")
    parser.add_argument("--projected-epochs", type=int, default=12, help="epochs assumed for one outer fold")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", default="224:last_blocks:1,160:last_blocks:1,128:last_blocks:1,"
                                              "224:last_blocks:3,224:head:0,128:all:0",
                        help="comma-separated image_size:trainable:n_last_blocks")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    table = sample(arguments.data, arguments.rois)
    print(f"{len(table)} BUS-BRA ROIs, torch threads {arguments.threads}; projection: one outer fold of "
          f"{FULL_ROIS} ROIs, {arguments.projected_epochs} epochs", flush=True)
    rows = []
    for setting in arguments.settings.split(","):
        size, trainable, blocks = setting.split(":")
        rows.append(measure(table, int(size), trainable, max(int(blocks), 1), arguments.epochs,
                            arguments.projected_epochs))
        print(pd.DataFrame(rows[-1:]).round(2).to_string(index=False, header=len(rows) == 1), flush=True)


if __name__ == "__main__":
    main()

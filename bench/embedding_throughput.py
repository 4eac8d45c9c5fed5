"""How fast is our embedding extraction, and what does training the head on cached embeddings save?

For each backbone, on the same N ROIs and batch size:

1. ``compute_embeddings`` end to end (read PNGs, crop, resize, normalise, forward; no cache), images/s;
2. a bare torch forward pass of the same backbone on the already-preprocessed batch, images/s,
   in the default (NCHW) layout and in channels-last;
3. head training for E epochs on cached embeddings (:class:`EmbeddingHeadClassifier`) vs the same E
   epochs through the frozen network (:func:`train_head_through_backbone`, the paper's way).

Run (from the repository root)::

    nice .venv/bin/python bench/embedding_throughput.py --data ../shared/data/bus-bra --n 48 --epochs 3

Images are BUS-BRA ROIs when ``--data`` exists, else generated ones. ``--threads`` sets torch's CPU
threads (1 by default: on a shared, busy machine one thread is the fastest).

Measured (48 BUS-BRA ROIs, batch 16, one CPU thread, shared machine, so +-20% between runs):
EfficientNet-Lite0: ours 16.8 images/s, bare forward 17.8 (NCHW) / 18.5 (channels-last); head
for 3 epochs 0.015 s on cached embeddings vs 25.7 s through the network. ResNet-50 (random
weights): ours 6.3, bare 6.0 / 6.6; head 0.009 s vs 28.3 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dlradiomics.cohort import Cohort, load_row_roi
from dlradiomics.features.deep import (
    CropSettings,
    EmbeddingHeadClassifier,
    compute_embeddings,
    create_backbone,
    prepare_roi,
    train_head_through_backbone,
)


def _generated_table(folder: Path, n_images: int) -> pd.DataFrame:
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for index in range(n_images):
        image = rng.integers(0, 256, size=(400, 500), dtype=np.uint8)
        mask = np.zeros((400, 500), dtype=np.uint8)
        mask[100:250, 150:350] = 255
        image_path, mask_path = folder / f"image{index}.png", folder / f"mask{index}.png"
        Image.fromarray(image).save(image_path)
        Image.fromarray(mask).save(mask_path)
        rows.append({"roi_id": f"P{index}/US/image{index}", "patient_id": f"P{index}", "modality": "US",
                     "image": str(image_path), "mask": str(mask_path), "label": index % 2})
    return pd.DataFrame(rows)


def roi_table(data: Path, n_images: int, scratch: Path) -> pd.DataFrame:
    """The first ``n_images`` BUS-BRA ROIs, or generated ones when BUS-BRA is not there."""
    if data.is_dir():
        from dlradiomics.cohort.loaders import bus_bra_manifest

        return Cohort.from_table(bus_bra_manifest(data), data).table.head(n_images).reset_index(drop=True)
    return _generated_table(scratch, n_images)


def images_per_second(n_images: int, seconds: float) -> str:
    return f"{n_images / seconds:7.1f} images/s ({seconds:6.2f} s)"


def bare_forward_seconds(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int, channels_last: bool) -> float:
    """Seconds of the bare forward passes over ``inputs`` in batches (after one warm-up batch)."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(inputs[:batch_size])
        started = time.perf_counter()
        for start in range(0, len(inputs), batch_size):
            model(inputs[start:start + batch_size])
    seconds = time.perf_counter() - started
    model.to(memory_format=torch.contiguous_format)
    return seconds


def benchmark(name: str, weights: str | None, table: pd.DataFrame, batch_size: int, epochs: int) -> None:
    backbone = create_backbone(name, weights)
    n_images = len(table)
    print(f"\n{name} (weights {backbone.weights_id}), {n_images} ROIs, batch {batch_size}, "
          f"{torch.get_num_threads()} thread(s)")

    started = time.perf_counter()
    embeddings = compute_embeddings(table, backbone, batch_size=batch_size, device="cpu")
    ours = time.perf_counter() - started
    print(f"  compute_embeddings (read+crop+forward, channels-last): {images_per_second(n_images, ours)}")

    inputs = torch.stack([
        prepare_roi(roi.image, roi.mask, input_size=backbone.input_size, mean=backbone.mean, std=backbone.std,
                    settings=CropSettings()).tensor
        for roi in (load_row_roi(row) for _, row in table.iterrows())
    ])
    for channels_last in (False, True):
        seconds = bare_forward_seconds(backbone.model, inputs, batch_size, channels_last)
        layout = "channels-last" if channels_last else "NCHW         "
        print(f"  bare torch forward on preprocessed batch, {layout}: {images_per_second(n_images, seconds)}")

    features = embeddings.filter(regex=r"^deep_\d+$").to_numpy()
    labels = embeddings["label"].to_numpy()
    started = time.perf_counter()
    EmbeddingHeadClassifier(epochs=epochs, batch_size=batch_size).fit(features, labels)
    on_cache = time.perf_counter() - started
    started = time.perf_counter()
    train_head_through_backbone(backbone.model, inputs, labels, epochs=epochs, batch_size=batch_size)
    through = time.perf_counter() - started
    print(f"  head, {epochs} epochs on cached embeddings: {on_cache:8.3f} s")
    print(f"  head, {epochs} epochs through the network:  {through:8.3f} s  ({through / on_cache:,.0f}x slower; "
          f"the paper's 200 epochs: ~{through / epochs * 200 / 60:.0f} min vs {on_cache / epochs * 200:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bus-bra"))
    parser.add_argument("--n", type=int, default=48, help="number of ROIs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    with tempfile.TemporaryDirectory() as scratch:
        table = roi_table(arguments.data, arguments.n, Path(scratch))
        for name, weights in (("efficientnet_lite0", "imagenet"), ("resnet50", None)):
            benchmark(name, weights, table, arguments.batch_size, arguments.epochs)


if __name__ == "__main__":
    main()

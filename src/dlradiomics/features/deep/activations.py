"""ROI crops and frozen-front activations, computed once per ROI and setting and cached.

Training a network inside every outer (and inner) fold reads the same ROIs again and again. What
does not depend on the training labels is computed once and kept: the 0-1 crop of each ROI at the
network's input size, and, when only the last blocks are trained, the output of the frozen front
of the network (:func:`~dlradiomics.features.deep.stages.split_backbone`) for each fixed view of
the crop (as is, mirrored). Both go to the :class:`~dlradiomics.store.FeatureStore` under content
keys (file hashes + every setting), and to a bounded in-process memo, so the folds of one study and
later studies pay nothing for them. No label is part of any of it, so sharing across folds leaks
nothing.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from dlradiomics.cohort import load_row_roi
from dlradiomics.features.deep.backbones import Backbone
from dlradiomics.features.deep.embeddings import roi_identity
from dlradiomics.features.deep.preprocessing import CropSettings, prepare_roi
from dlradiomics.store import FeatureStore, content_key

logger = logging.getLogger(__name__)

# Fixed views of a crop whose front activations are cached: the augmentation that survives
# caching. A mirrored ultrasound or mammography lesion keeps its diagnosis.
VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda crops: crops,
    "hflip": lambda crops: crops.flip(-1),
}
# Bump when the crop or activation computation changes in a way the settings do not capture.
ACTIVATION_CODE_VERSION = 1
_MEMO_BYTES = int(os.environ.get("DLRADIOMICS_ACTIVATION_MEMO_MB", "1024")) << 20


class _BytesLRU:
    """Least-recently-used memo of arrays, bounded by their total size."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> np.ndarray | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: np.ndarray) -> None:
        if value.nbytes > self.max_bytes or key in self._items:
            return
        self._items[key] = value
        self._bytes += value.nbytes
        while self._bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= evicted.nbytes


# Shared by every estimator of the process: outer folds, inner folds and classifiers read the same
# ROIs; reading them back from Parquet each time costs more than training the last block.
_MEMO = _BytesLRU(_MEMO_BYTES)


def normalise_crops(crops: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """0-1 greyscale crops ``(N, S, S)`` to the network's normalised 3-channel input ``(N, 3, S, S)``."""
    mean_tensor = torch.tensor(mean, dtype=crops.dtype, device=crops.device)[None, :, None, None]
    std_tensor = torch.tensor(std, dtype=crops.dtype, device=crops.device)[None, :, None, None]
    return (crops[:, None].expand(-1, 3, -1, -1) - mean_tensor) / std_tensor


@dataclass
class RoiArrays:
    """Per-ROI arrays of a table's rows that could be read.

    Attributes:
        positions: row positions (0..n-1) of the table that have arrays.
        arrays: view name -> tensor ``(len(positions), ...)``.
        failures: ``roi_id, patient_id, image, mask, error`` of the rows that could not be read.
        identities: the content identity of each ROI in ``positions`` (file hashes, slice, label).
    """

    positions: np.ndarray
    arrays: dict[str, torch.Tensor]
    failures: list[dict[str, object]]
    identities: list[dict[str, object]]


def _read_array(store: FeatureStore, namespace: str, key: str) -> np.ndarray | None:
    import pyarrow.parquet as pq

    path = store.path(namespace, key)
    if not path.exists():
        return None
    table = pq.read_table(path, use_threads=False)
    values = table.column("values").combine_chunks().flatten().to_numpy()
    return values.reshape(table.column("shape").to_pylist()[0]).astype(np.float32, copy=False)


def _write_array(store: FeatureStore, namespace: str, key: str, array: np.ndarray) -> None:
    store.put(namespace, key, pd.DataFrame({"values": [array.ravel()], "shape": [list(array.shape)]}))


def _cached(keys: list[str], store: FeatureStore | None, namespace: str) -> dict[int, np.ndarray]:
    found: dict[int, np.ndarray] = {}
    for index, key in enumerate(keys):
        memo_key = f"{namespace}/{key}"
        array = _MEMO.get(memo_key)
        if array is None and store is not None:
            array = _read_array(store, namespace, key)
            if array is not None:
                _MEMO.put(memo_key, array)
        if array is not None:
            found[index] = array
    return found


def _remember(store: FeatureStore | None, namespace: str, key: str, array: np.ndarray) -> None:
    _MEMO.put(f"{namespace}/{key}", array)
    if store is not None:
        _write_array(store, namespace, key, array)


def _failure(row: pd.Series, message: str) -> dict[str, object]:
    return {"roi_id": row.get("roi_id"), "patient_id": row.get("patient_id"), "image": str(row["image"]),
            "mask": str(row["mask"]), "error": message}


def roi_crops(table: pd.DataFrame, *, input_size: int, settings: CropSettings = CropSettings(),
              store_dir: str | os.PathLike[str] | None = None) -> RoiArrays:
    """The 0-1 greyscale crop ``(S, S)`` of every readable ROI of ``table``, cached.

    Args:
        table: ROI rows with ``image``, ``mask`` (optional ``mask_label``, ``slice``, ``roi_id``,
            ``patient_id`` for messages).
        input_size: side ``S`` of the square crop.
        settings: crop settings.
        store_dir: feature store folder; ``None`` keeps the crops in the process memo only.

    Returns:
        The crops under the view name ``"identity"``, with the positions of the rows read and the
        failures (an unreadable ROI is reported, never fatal).
    """
    store = FeatureStore(store_dir) if store_dir is not None else None
    namespace = f"deep-crops/{input_size}"
    file_hashes: dict[str, str] = {}
    keys: dict[int, str] = {}
    identities: dict[int, dict[str, object]] = {}
    failures: list[dict[str, object]] = []
    for position, (_, row) in enumerate(table.iterrows()):
        try:
            identities[position] = roi_identity(row, file_hashes)
            keys[position] = content_key({**identities[position], "input_size": input_size,
                                          "preprocessing": settings.as_dict(), "code_version": ACTIVATION_CODE_VERSION})
        except OSError as error:
            failures.append(_failure(row, f"cannot hash input file: {error}"))
    positions = list(keys)
    found = _cached([keys[position] for position in positions], store, namespace)
    crops: dict[int, np.ndarray] = {positions[index]: array for index, array in found.items()}
    missing = [position for position in positions if position not in crops]
    for position in missing:
        row = table.iloc[position]
        try:
            roi = load_row_roi(row)
            crop = prepare_roi(roi.image, roi.mask, input_size=input_size, mean=(0.0,) * 3, std=(1.0,) * 3,
                               settings=settings).crop.astype(np.float32)
        except (ValueError, OSError) as error:
            failures.append(_failure(row, str(error)))
            continue
        crops[position] = crop
        _remember(store, namespace, keys[position], crop)
    if missing:
        logger.info("cropped %d ROIs (%d from the cache)", len(missing), len(positions) - len(missing))
    done = np.array(sorted(crops), dtype=int)
    stacked = (torch.from_numpy(np.stack([crops[position] for position in done])) if len(done)
               else torch.empty((0, input_size, input_size)))
    return RoiArrays(positions=done, arrays={"identity": stacked}, failures=failures,
                     identities=[identities[position] for position in done])


def front_activations(table: pd.DataFrame, backbone: Backbone, front: nn.Module, *, n_front_blocks: int,
                      input_size: int, settings: CropSettings = CropSettings(), views: tuple[str, ...] = ("identity",),
                      store_dir: str | os.PathLike[str] | None = None, batch_size: int = 32,
                      device: torch.device | str = "cpu") -> RoiArrays:
    """The frozen front's output for each view of each readable ROI, cached.

    Args:
        table: ROI rows (see :func:`roi_crops`).
        backbone: the backbone the front was cut from (its name, weights and normalisation are
            part of the cache key).
        front: the frozen front (``split_backbone(backbone, ...)[0]``), eval mode.
        n_front_blocks: how many blocks the front holds (part of the cache key).
        input_size: crop side.
        settings: crop settings.
        views: names from :data:`VIEWS`.
        store_dir: feature store folder; ``None`` keeps them in the process memo only.
        batch_size: crops per forward pass.
        device: where the front runs.

    Returns:
        One tensor ``(n, C, H, W)`` per view, for the rows in ``positions``.
    """
    unknown = [view for view in views if view not in VIEWS]
    if unknown:
        raise ValueError(f"unknown views {unknown}; choose from {sorted(VIEWS)}")
    crops = roi_crops(table, input_size=input_size, settings=settings, store_dir=store_dir)
    store = FeatureStore(store_dir) if store_dir is not None else None
    namespace = f"deep-front/{backbone.name}/{backbone.weights_id}"
    base = {"backbone": backbone.name, "weights": backbone.weights_id, "mean": list(backbone.mean),
            "std": list(backbone.std), "input_size": input_size, "preprocessing": settings.as_dict(),
            "n_front_blocks": n_front_blocks, "code_version": ACTIVATION_CODE_VERSION}
    identities = crops.identities
    arrays: dict[str, torch.Tensor] = {}
    front = front.to(device).eval()
    for view in views:
        keys = [content_key({**identity, **base, "view": view}) for identity in identities]
        found = _cached(keys, store, namespace)
        missing = [index for index in range(len(keys)) if index not in found]
        for start in range(0, len(missing), batch_size):
            chunk = missing[start:start + batch_size]
            batch = normalise_crops(VIEWS[view](crops.arrays["identity"][chunk]), backbone.mean, backbone.std)
            with torch.inference_mode():
                outputs = front(batch.to(device)).float().cpu().numpy()
            for index, output in zip(chunk, outputs):
                found[index] = output
                _remember(store, namespace, keys[index], output)
        if missing:
            logger.info("front of %s (%d blocks), view %s: %d ROIs computed, %d from the cache", backbone.name,
                        n_front_blocks, view, len(missing), len(keys) - len(missing))
        arrays[view] = (torch.from_numpy(np.stack([found[index] for index in range(len(keys))])) if keys
                        else torch.empty(0))
    return RoiArrays(positions=crops.positions, arrays=arrays, failures=crops.failures, identities=identities)

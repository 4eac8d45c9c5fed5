"""Per-ROI deep embeddings of a cohort, computed once per ROI and setting and cached.

The backbone is frozen, so its global-average-pool output for an ROI never changes for a given
image, mask, backbone, weights and preprocessing. Each embedding is stored in the
:class:`~dlradiomics.store.FeatureStore` under a key of exactly those inputs; a second call (another
experiment, another fold, another classifier) reads them back and runs no network at all. As for
radiomic extraction, embeddings are store rows (appended, then consolidated into one table read in
one go) and the files' SHA-256 are remembered in the store's ``file-hashes.json``
(:class:`~dlradiomics.io.FileHashCache`), so a cached re-run neither hashes every image nor opens a
file per ROI. Embeddings stored as one file per ROI by earlier versions are still read (and copied
into the rows).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dlradiomics.features.defaults import DEFAULT_BACKBONE
from dlradiomics.features.deep.identity import BackboneIdentity, backbone_identity
from dlradiomics.features.deep.preprocessing import CropSettings, DEFAULT_MARGIN, PreparedRoi, prepare_roi, save_crop_png
from dlradiomics.io import FileHashCache
from dlradiomics.io.atomic import write_csv_atomic, write_json_atomic, write_parquet_atomic
from dlradiomics.progress import Progress
from dlradiomics.schema import FAILURE_COLUMNS, META_COLUMNS
from dlradiomics.store import FeatureStore, content_key

if TYPE_CHECKING:
    import torch

    from dlradiomics.features.deep.backbones import Backbone

logger = logging.getLogger(__name__)

# One list-valued cell per ROI: a Parquet file with one column per dimension costs ~700 kB of
# column metadata for a 1280-d vector; a single list column stores it in ~5 kB and reads faster.
STORE_COLUMN = "embedding"
# Bump when the embedding computation changes in a way the settings do not capture.
EMBEDDING_CODE_VERSION = 1
# The store's memo of file SHA-256s (the name radiomic extraction uses: one memo per store).
HASH_CACHE_FILE = "file-hashes.json"


def deep_column_names(embedding_dim: int) -> list[str]:
    """``deep_0000``, ``deep_0001``, ... for an embedding of ``embedding_dim`` values."""
    return [f"deep_{index:04d}" for index in range(embedding_dim)]


def default_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    import torch  # here, not at the top: a fully cached run never imports torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def embedding_namespace(backbone: Backbone | BackboneIdentity) -> str:
    """Store namespace of a backbone's embeddings: ``deep/{backbone}/{weights_id}``."""
    return f"deep/{backbone.name}/{backbone.weights_id}"


@dataclass(frozen=True)
class _RoiRequest:
    position: int
    row: pd.Series
    key: str


def _optional(row: pd.Series, column: str):
    value = row.get(column)
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return int(value) if isinstance(value, (int, np.integer, float, np.floating)) else value


def _read_and_crop(row: pd.Series, backbone: Backbone, settings: CropSettings) -> PreparedRoi | dict[str, object]:
    """The ROI's network input, or its failure record (stage ``"read"`` or ``"crop"``)."""
    from dlradiomics.cohort import load_row_roi

    try:
        roi = load_row_roi(row)
    except (ValueError, OSError) as error:
        return _failure(row, "read", str(error))
    try:
        return prepare_roi(roi.image, roi.mask, input_size=backbone.input_size, mean=backbone.mean,
                           std=backbone.std, settings=settings)
    except (ValueError, OSError) as error:
        return _failure(row, "crop", str(error))


def roi_identity(row: pd.Series, file_hashes: dict[str, str] | FileHashCache) -> dict[str, object]:
    """What identifies one ROI's pixels: the files' SHA-256 and the mask label / slice chosen.

    Args:
        row: one cohort row (``image``, ``mask``, optional ``mask_label``, ``slice``).
        file_hashes: a :class:`~dlradiomics.io.FileHashCache` (hashes remembered across runs), or
            a dict memo for this call only (a mask shared by rows is hashed once).

    Returns:
        Plain values, for :func:`~dlradiomics.store.content_key`.

    Raises:
        OSError: a file cannot be read.
    """
    from dlradiomics.io import sha256_file

    digests = {}
    for column in ("image", "mask"):
        path = str(row[column])
        if isinstance(file_hashes, FileHashCache):
            digests[column] = file_hashes.sha256(path)
            continue
        if path not in file_hashes:
            file_hashes[path] = sha256_file(path)
        digests[column] = file_hashes[path]
    return {
        "image_sha256": digests["image"],
        "mask_sha256": digests["mask"],
        "mask_label": _optional(row, "mask_label"),
        "slice": _optional(row, "slice"),
    }


def roi_cache_key(row: pd.Series, backbone: Backbone | BackboneIdentity, settings: CropSettings,
                  file_hashes: dict[str, str] | FileHashCache) -> str:
    """The content key of one ROI's embedding: files' hashes, slice/label choice, network, settings.

    Args:
        row: one cohort row (``image``, ``mask``, optional ``mask_label``, ``slice``).
        backbone: the backbone that embeds it (or its `BackboneIdentity`: the same key).
        settings: the crop settings.
        file_hashes: a :class:`~dlradiomics.io.FileHashCache` or a dict memo (see :func:`roi_identity`).

    Returns:
        A SHA-256 hex key.
    """
    return content_key({
        **roi_identity(row, file_hashes),
        "backbone": backbone.name,
        "weights": backbone.weights_id,
        "input_size": backbone.input_size,
        "mean": list(backbone.mean),
        "std": list(backbone.std),
        "preprocessing": settings.as_dict(),
        "code_version": EMBEDDING_CODE_VERSION,
    })


def _batches(items: list, batch_size: int) -> Iterator[list]:
    for start in range(0, len(items), batch_size):
        yield items[start:start + batch_size]


def embed_batch(backbone: Backbone, batch: torch.Tensor, device: torch.device, channels_last: bool) -> np.ndarray:
    """Run the frozen backbone on one normalised batch.

    Args:
        backbone: the backbone (moved to ``device`` by the caller).
        batch: ``(N, 3, S, S)`` float32 tensor.
        device: where to compute.
        channels_last: use the NHWC memory layout (faster for convolutions on recent GPUs/CPUs).

    Returns:
        ``(N, embedding_dim)`` float32 array.
    """
    import torch  # here, not at the top: a fully cached run never imports torch

    batch = batch.to(device, non_blocking=True)
    if channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        output = backbone.model(batch)
    return output.float().cpu().numpy()


def compute_embeddings(cohort, backbone: str | Backbone = DEFAULT_BACKBONE,
                       weights: str | os.PathLike[str] | None = "imagenet", *,
                       store_dir: str | os.PathLike[str] | None = None, batch_size: int = 32,
                       margin: float = DEFAULT_MARGIN, device: str | torch.device | None = None,
                       channels_last: bool = True, crops_dir: str | os.PathLike[str] | None = None,
                       seed: int = 0, weights_dir: str | os.PathLike[str] | None = None,
                       progress: bool = False) -> pd.DataFrame:
    """Global-average-pool embeddings of every ROI of a cohort, one row per ``roi_id``.

    ROIs already in the store are read back; the rest are computed in batches under
    ``torch.inference_mode`` and written to the store one by one, so an interrupted run resumes.
    An ROI that cannot be read or cropped is logged and listed in ``result.attrs["failures"]``
    (records ``roi_id, patient_id, image, mask, stage, error``, stage ``"read"`` for a file that
    cannot be hashed or read, ``"crop"`` for an ROI that cannot be cropped; :func:`embedding_failures`
    gives them as a table); it does not stop the others. The attrs hold only plain values, so the result can be
    written with ``to_parquet`` as it is.

    Args:
        cohort: a :class:`~dlradiomics.cohort.Cohort` or its table (``roi_id, patient_id, modality,
            image, mask, label``, optional ``mask_label``, ``slice``).
        backbone: a registry name or an already built :class:`Backbone`.
        weights: ``"imagenet"``, a state-dict path or ``None``; ignored when ``backbone`` is built.
        store_dir: feature store folder; ``None`` computes without caching.
        batch_size: ROIs per forward pass.
        margin: crop margin (fraction of the lesion box's size on each side).
        device: ``"cuda"``, ``"cpu"``...; default: CUDA when available.
        channels_last: NHWC memory layout; on by default: on CPU it was as fast or faster in every
            run of ``bench/embedding_throughput.py`` (one thread: EfficientNet-Lite0 18.5 vs 17.8
            images/s, ResNet-50 6.6 vs 6.0), and it is the fast layout for GPU convolutions.
        crops_dir: when given, each computed crop is also saved there as PNG for inspection.
        seed: seed of random weights when ``weights`` is ``None``.
        weights_dir: the checked store of torchvision ImageNet files (see
            :mod:`dlradiomics.features.deep.weights`); default ``$DLRADIOMICS_WEIGHTS`` or the user cache.
        progress: show the count of ROIs embedded and the time left (`dlradiomics.progress`).

    Returns:
        DataFrame with the meta columns then ``deep_0000`` ... in the cohort's row order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    from dlradiomics.cohort.cohort import cohort_table

    table = cohort_table(cohort, META_COLUMNS)
    # A name is built into a network only when an ROI is not in the store: the store keys need only
    # the backbone's identity, known without torch.
    identity = backbone_identity(backbone, weights, seed=seed) if isinstance(backbone, str) else backbone
    settings = CropSettings(margin=margin)
    store = FeatureStore(store_dir) if store_dir is not None else None
    namespace = embedding_namespace(identity)
    columns = deep_column_names(identity.embedding_dim)

    embeddings: dict[int, np.ndarray] = {}
    failures: list[dict[str, object]] = []
    pending: list[_RoiRequest] = []
    hashes = FileHashCache(Path(store_dir) / HASH_CACHE_FILE if store_dir is not None else None)
    keys: dict[int, str] = {}
    # Rows as plain dicts: a pandas row per ROI cost a third of a cached run's embedding read.
    for position, row in zip(table.index, table.to_dict("records")):
        try:
            keys[position] = roi_cache_key(row, identity, settings, hashes)
        except OSError as error:
            failures.append(_failure(row, "read", f"cannot hash input file: {error}"))
    hashes.save()
    stored, n_copied = _stored_embeddings(store, namespace, set(keys.values())) if store is not None else ({}, 0)
    for position, key in keys.items():
        if key in stored:
            embeddings[position] = stored[key]
        else:
            pending.append(_RoiRequest(position, table.loc[position], key))

    try:
        if pending:
            import torch  # here, not at the top: a fully cached run never imports torch

            built = _built(backbone, identity, weights, seed=seed, weights_dir=weights_dir)
            device = torch.device(device) if device is not None else default_device()
            logger.info("embedding %d of %d ROIs with %s (%s) on %s", len(pending), len(table),
                        built.name, built.weights_id, device)
            with Progress(len(table), "embedding", unit="ROI", initial=len(table) - len(pending),
                          enabled=progress) as bar:
                computed, failed = _embed_pending(pending, built, settings, store, batch_size=batch_size,
                                                  device=device, channels_last=channels_last, crops_dir=crops_dir,
                                                  bar=bar)
            embeddings.update(computed)
            failures.extend(failed)
    finally:
        if store is not None:
            store.close()  # what was embedded stays stored, even if a later batch failed
    if store is not None and (pending or n_copied):
        store.consolidate(namespace)  # one table: the next run reads every embedding at once

    for failure in failures:
        logger.warning("no embedding for ROI %s of patient %s (%s): %s", failure["roi_id"],
                       failure["patient_id"], failure["image"], failure["error"])
    done = sorted(embeddings)
    meta = table.loc[done, META_COLUMNS].reset_index(drop=True)
    matrix = np.vstack([embeddings[position] for position in done]) if done else np.empty((0, len(columns)), np.float32)
    result = pd.concat([meta, pd.DataFrame(matrix, columns=columns)], axis=1)
    result.attrs["failures"] = failures
    result.attrs["backbone"] = identity.name
    result.attrs["weights_id"] = identity.weights_id
    result.attrs["preprocessing"] = settings.as_dict()
    return result


def _built(backbone: str | Backbone, identity: Backbone | BackboneIdentity, weights, *, seed: int,
           weights_dir: str | os.PathLike[str] | None) -> Backbone:
    """The network itself: ``backbone`` when it is built, else the registry's, which must have the identity
    the store keys were made with."""
    if not isinstance(backbone, str):
        return backbone
    from dlradiomics.features.deep.backbones import create_backbone

    built = create_backbone(backbone, weights, seed=seed, weights_dir=weights_dir)
    made = (built.name, built.weights_id, built.embedding_dim, built.input_size, tuple(built.mean), tuple(built.std))
    expected = (identity.name, identity.weights_id, identity.embedding_dim, identity.input_size,
                tuple(identity.mean), tuple(identity.std))
    if made != expected:  # a registry change not mirrored in identity.py: never store under a wrong key
        raise RuntimeError(f"backbone {backbone!r} built as {made}, but its identity says {expected}; "
                           "update dlradiomics.features.deep.identity")
    return built


def _stored_embeddings(store: FeatureStore, namespace: str, keys: set[str]) -> tuple[dict[str, np.ndarray], int]:
    """The stored embeddings of ``keys``: the store's rows, read in one go, then per-ROI files.

    Embeddings that earlier versions stored one file per ROI are read from their files and copied
    into rows, so that the next run reads them with the others.

    Returns:
        key -> embedding for the keys found, and how many were copied from per-ROI files.
    """
    found = {key: np.asarray(row[STORE_COLUMN], dtype=np.float32)
             for key, row in store.get_rows(namespace, keys).items()}
    n_copied = 0
    for key in sorted(keys - found.keys()):
        if not store.path(namespace, key).exists():
            continue
        frame = store.get(namespace, key)
        if frame is None:
            continue
        found[key] = np.asarray(frame[STORE_COLUMN].iloc[0], dtype=np.float32)
        store.put_row(namespace, key, {STORE_COLUMN: found[key]})
        n_copied += 1
    return found, n_copied


def _embed_pending(pending: list[_RoiRequest], backbone: Backbone, settings: CropSettings,
                   store: FeatureStore | None, *, batch_size: int, device: torch.device, channels_last: bool,
                   crops_dir: str | os.PathLike[str] | None,
                   bar: Progress | None = None) -> tuple[dict[int, np.ndarray], list[dict[str, object]]]:
    """Read, crop and embed the ROIs not in the store, batch by batch; store each result at once."""
    namespace = embedding_namespace(backbone)
    embeddings: dict[int, np.ndarray] = {}
    failures: list[dict[str, object]] = []
    import torch  # here, not at the top: a fully cached run never imports torch

    model = backbone.model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    for requests in _batches(pending, batch_size):
        ready: list[tuple[_RoiRequest, PreparedRoi]] = []
        for request in requests:
            prepared = _read_and_crop(request.row, backbone, settings)
            if isinstance(prepared, dict):
                failures.append(prepared)
            else:
                ready.append((request, prepared))
        if ready:
            batch = torch.stack([prepared.tensor for _, prepared in ready])
            vectors = embed_batch(backbone, batch, device, channels_last)
            for (request, prepared), vector in zip(ready, vectors):
                embeddings[request.position] = vector
                if store is not None:
                    store.put_row(namespace, request.key, {STORE_COLUMN: vector})
                if crops_dir is not None:
                    save_crop_png(prepared.crop, Path(crops_dir) / f"{_safe_name(request.row['roi_id'])}.png")
        if bar is not None:
            bar.update(len(requests))
    return embeddings, failures


def _failure(row: pd.Series, stage: str, message: str) -> dict[str, object]:
    return {"roi_id": row["roi_id"], "patient_id": row["patient_id"], "image": str(row["image"]),
            "mask": str(row["mask"]), "stage": stage, "error": message}


def _safe_name(roi_id: str) -> str:
    # roi_ids look like "patient/US/stem"; one flat folder of crops is easier to browse.
    return str(roi_id).replace("/", "__").replace("#", "_")


def write_embeddings(result: pd.DataFrame, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write a :func:`compute_embeddings` result: the table (Parquet), failures and provenance.

    Args:
        result: the embeddings table (its ``attrs`` carry failures and settings).
        out_dir: folder to write into; created if needed.

    Returns:
        Paths by kind: ``embeddings`` (``deep_{backbone}.parquet``), ``failures`` (CSV) and
        ``provenance`` (JSON: backbone, weights, preprocessing, library versions).
    """
    import torch
    import torchvision

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone = result.attrs.get("backbone", "deep")
    paths = {"embeddings": out / f"deep_{backbone}.parquet", "failures": out / "failures.csv",
             "provenance": out / "provenance.json"}
    write_parquet_atomic(result.reset_index(drop=True), paths["embeddings"])
    write_csv_atomic(embedding_failures(result), paths["failures"])
    provenance = {"backbone": backbone, "weights_id": result.attrs.get("weights_id"),
                  "preprocessing": result.attrs.get("preprocessing"), "n_rois": len(result),
                  "torch": torch.__version__, "torchvision": torchvision.__version__}
    write_json_atomic(paths["provenance"], provenance)
    return paths


def embedding_failures(result: pd.DataFrame) -> pd.DataFrame:
    """The ROIs that :func:`compute_embeddings` could not embed: ``roi_id, patient_id, image, mask, stage, error``."""
    return pd.DataFrame(result.attrs.get("failures", []), columns=FAILURE_COLUMNS)

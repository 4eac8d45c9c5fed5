"""The BUSI folder layout (Al-Dhabyani et al., 2020) and data sets published the same way."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dlradiomics.cohort.loaders.common import manifest_frame, require_dir, write_binary_mask
from dlradiomics.io import ImageReadError, read_image

BUSI_CLASSES = ("benign", "malignant")
_MASK_NAME = re.compile(r"^(?P<stem>.+)_mask(?:_(?P<index>\d+))?\.png$", re.IGNORECASE)


def busi_manifest(root: str | os.PathLike[str], mask_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Manifest rows for a BUSI-style layout: class folders of ``name.png`` + ``name_mask.png``.

    ``benign/`` and ``malignant/`` are read; ``normal/`` (no lesion) is left out. An image with
    several masks (``name_mask.png``, ``name_mask_1.png`` ...) gets one mask, their union, written
    to ``mask_dir``. BUSI publishes no patient identifiers, so each image is its own patient
    (``BUSI-benign-benign (1)``): images of one woman may then fall into different folds, which
    flatters results; say so when reporting on BUSI. Images without any mask, and masks that
    cannot be merged, are skipped with a reason in ``frame.attrs["skipped"]``.

    Args:
        root: folder holding the class folders.
        mask_dir: where merged masks are written (``<class>/<name>_mask_merged.png``); needed only
            when some image has several masks.

    Returns:
        One row per image, modality ``US``, with ``n_masks`` (how many mask files it had).

    Raises:
        FileNotFoundError: neither class folder exists.
        ValueError: some image has several masks and ``mask_dir`` is not given.
    """
    root = Path(root).absolute()
    class_dirs = [(name, root / name) for name in BUSI_CLASSES if (root / name).is_dir()]
    if not class_dirs:
        require_dir(root / BUSI_CLASSES[0], "BUSI class folder (benign/ or malignant/)")

    rows, skipped = [], []
    for class_name, folder in class_dirs:
        masks_of: dict[str, list[tuple[int, Path]]] = {}
        images = []
        for path in sorted(folder.glob("*.png")):
            match = _MASK_NAME.match(path.name)
            if match:
                masks_of.setdefault(match["stem"], []).append((int(match["index"] or 0), path))
            else:
                images.append(path)
        for image_path in images:
            masks = [path for _, path in sorted(masks_of.get(image_path.stem, []))]
            if not masks:
                skipped.append({"item": str(image_path), "reason": "no mask file (expected name_mask.png)"})
                continue
            if len(masks) == 1:
                mask_path = masks[0]
            else:
                if mask_dir is None:
                    raise ValueError(
                        f"{image_path} has {len(masks)} masks to merge; pass mask_dir, a folder to write merged masks to"
                    )
                try:
                    mask_path = _merge_masks(masks, Path(mask_dir).absolute() / class_name / f"{image_path.stem}_mask_merged.png")
                except ImageReadError as error:
                    skipped.append({"item": str(image_path), "reason": str(error)})
                    continue
            rows.append(
                {
                    "patient_id": f"BUSI-{class_name}-{image_path.stem}",
                    "modality": "US",
                    "image": str(image_path),
                    "mask": str(mask_path),
                    "label": class_name,
                    "n_masks": len(masks),
                }
            )
    return manifest_frame(rows, skipped, str(root))


def _merge_masks(masks: list[Path], out_path: Path) -> Path:
    union = None
    for path in masks:
        lesion = read_image(path, as_labels=True).array != 0
        if union is not None and lesion.shape != union.shape:
            raise ImageReadError(path, f"mask size {lesion.shape} differs from {masks[0].name} {union.shape}; cannot merge", kind="size_mismatch")
        union = lesion if union is None else np.logical_or(union, lesion)
    return write_binary_mask(out_path, union)

"""mini-MIAS mammograms (Suckling et al., 1994): lesion circles from Info.txt turned into masks."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlradiomics.cohort.loaders.common import manifest_frame, require_dir, require_file, write_binary_mask

_SEVERITY = {"B": "benign", "M": "malignant"}
_INFO_LINE = re.compile(r"^(mdb\d{3})\s+(\S+)\s+(\S+)(.*)$")


@dataclass(frozen=True)
class MiasLesion:
    """One line of Info.txt: an abnormality, with its circle when the database gives one."""

    reference: str
    tissue: str
    abnormality: str
    severity: str | None
    centre_x: int | None
    centre_y: int | None
    radius: int | None

    @property
    def has_circle(self) -> bool:
        return self.radius is not None


def parse_mias_info(path: str | os.PathLike[str]) -> list[MiasLesion]:
    """Parse the lesion lines of mini-MIAS ``Info.txt``.

    Args:
        path: the ``Info.txt`` file.

    Returns:
        One entry per ``mdbNNN`` line, in file order; ``severity`` and the circle are ``None``
        where the line does not give them (normal images, widely distributed calcifications).
    """
    lesions = []
    for line in Path(path).read_text(encoding="latin-1").splitlines():
        match = _INFO_LINE.match(line.strip())
        if not match:
            continue
        reference, tissue, abnormality, rest = match.groups()
        fields = rest.split()
        severity = fields[0] if fields and fields[0] in _SEVERITY else None
        numbers = [int(f) for f in fields[1:4] if f.isdigit()] if severity else []
        circle = numbers if len(numbers) == 3 else [None, None, None]
        lesions.append(MiasLesion(reference, tissue, abnormality, severity, *circle))
    return lesions


def mini_mias_manifest(root: str | os.PathLike[str], mask_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Manifest rows for mini-MIAS, writing one circle mask per image into ``mask_dir``.

    Info.txt gives each lesion as a centre (x, y) and radius with the origin at the bottom-left
    corner, so the image row of the centre is ``height - 1 - y`` (1023 - y for these 1024 x 1024
    images). An image with two lesions gets one row whose mask holds both circles. Lines without
    a circle (widely distributed calcifications) are skipped with a reason in
    ``frame.attrs["skipped"]``; so are images whose lesions disagree on severity, and the films of
    women with a benign lesion in one breast and a malignant one in the other (a patient carries
    one label).

    The films come in pairs, right (odd number) and left (even number) of one woman, so
    ``mdb001`` and ``mdb002`` share the patient ``MIAS-001``; ``side`` says which breast.

    Args:
        root: the mini-MIAS folder (``Info.txt`` and ``images/mdbNNN.png``).
        mask_dir: folder the masks are written to (``mdbNNN_mask.png``, 0/255); created if needed.

    Returns:
        One row per image with at least one circle: modality ``MG``, view ``MLO``, plus
        ``side``, ``tissue``, ``abnormality``, ``n_lesions`` and ``circles`` (``x,y,r;...``).

    Raises:
        FileNotFoundError: ``Info.txt`` or the ``images`` folder is missing.
    """
    from PIL import Image
    from skimage.draw import disk

    root = Path(root).absolute()
    mask_dir = Path(mask_dir).absolute()
    lesions = parse_mias_info(require_file(root / "Info.txt", "mini-MIAS Info.txt"))
    images = require_dir(root / "images", "mini-MIAS image folder")

    by_reference: dict[str, list[MiasLesion]] = defaultdict(list)
    for lesion in lesions:
        by_reference[lesion.reference].append(lesion)

    rows, skipped = [], []
    for reference, found in by_reference.items():
        image_path = images / f"{reference}.png"
        if all(lesion.severity is None for lesion in found):
            if image_path.exists():
                skipped.append({"item": reference, "reason": "no abnormality listed (normal film)"})
            continue  # normal films were left out of this copy of the database
        for lesion in found:
            if not lesion.has_circle:
                skipped.append(
                    {"item": reference, "reason": f"{lesion.abnormality} lesion without centre and radius in Info.txt"}
                )
        circles = [lesion for lesion in found if lesion.has_circle]
        if not circles:
            continue
        severities = {lesion.severity for lesion in found if lesion.severity}
        if len(severities) > 1:
            skipped.append({"item": reference, "reason": f"lesions disagree on severity: {sorted(severities)}"})
            continue
        if not image_path.is_file():
            skipped.append({"item": reference, "reason": f"image file not found: {image_path}"})
            continue
        with Image.open(image_path) as opened:
            width, height = opened.size
        mask = np.zeros((height, width), dtype=bool)
        for lesion in circles:
            rows_, cols_ = disk((height - 1 - lesion.centre_y, lesion.centre_x), lesion.radius, shape=mask.shape)
            mask[rows_, cols_] = True
        mask_path = write_binary_mask(mask_dir / f"{reference}_mask.png", mask)
        number = int(reference[3:])
        rows.append(
            {
                "patient_id": f"MIAS-{(number + 1) // 2:03d}",
                "modality": "MG",
                "image": str(image_path),
                "mask": str(mask_path),
                "label": _SEVERITY[severities.pop()],
                "view": "MLO",
                "side": "left" if number % 2 == 0 else "right",
                "tissue": found[0].tissue,
                "abnormality": "+".join(sorted({lesion.abnormality for lesion in circles})),
                "n_lesions": len(circles),
                "circles": ";".join(f"{c.centre_x},{c.centre_y},{c.radius}" for c in circles),
            }
        )
    rows = _drop_discordant_patients(rows, skipped)
    return manifest_frame(rows, skipped, str(root))


def _drop_discordant_patients(rows: list[dict], skipped: list[dict]) -> list[dict]:
    """Leave out women with a benign lesion in one breast and a malignant one in the other.

    A patient carries one label in a cohort (that is what patient-grouped evaluation predicts),
    so these films cannot be labelled without choosing a breast; they are skipped with a reason.
    """
    labels_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        labels_of[row["patient_id"]].add(row["label"])
    kept = []
    for row in rows:
        if len(labels_of[row["patient_id"]]) > 1:
            reason = f"patient {row['patient_id']} has a benign lesion in one breast and a malignant one in the other"
            skipped.append({"item": Path(row["image"]).stem, "reason": reason})
        else:
            kept.append(row)
    return kept

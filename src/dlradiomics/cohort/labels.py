"""Diagnosis labels: the spellings a manifest may use, and the integer every table carries."""

from __future__ import annotations

from typing import Any

BENIGN, MALIGNANT = 0, 1
LABEL_NAMES = {BENIGN: "benign", MALIGNANT: "malignant"}
_SPELLINGS = {
    "benign": BENIGN,
    "b": BENIGN,
    "0": BENIGN,
    "0.0": BENIGN,
    "malignant": MALIGNANT,
    "m": MALIGNANT,
    "1": MALIGNANT,
    "1.0": MALIGNANT,
}
ACCEPTED_LABELS = "benign/malignant, B/M or 0/1 (any case)"


def parse_label(value: Any) -> int | None:
    """The integer label (0 benign, 1 malignant) for a manifest's spelling, or ``None`` if unknown.

    Args:
        value: ``"benign"``, ``"Malignant"``, ``"B"``, ``"m"``, ``0``, ``1``, ``"1"`` ... (case-insensitive).
    """
    if isinstance(value, bool) or value is None:
        return None
    return _SPELLINGS.get(str(value).strip().lower())

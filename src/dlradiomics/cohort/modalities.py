"""Modality names: free names, matched case-insensitively after stripping spaces.

``US``, ``MG`` and ``MRI`` are the conventions (the loaders write them), but a modality is any
name: ``MRI_T2``, ``DCE``, ``DBT``. Every name is stored in one canonical spelling, upper case
without surrounding spaces, so ``us``, `` Us `` and ``US`` are one modality in the manifest, the
study file, the report and the model bundle alike.

A name may use letters, digits, ``_`` and ``-`` (it becomes part of feature-block names such as
``MRI_T2.radiomic`` and of modality sets such as ``US+MG``, so ``.``, ``+`` and ``__`` are not
allowed).
"""

from __future__ import annotations

import re
from typing import Any

MODALITY_CONVENTIONS = ("US", "MG", "MRI")
MAX_MODALITY_LENGTH = 32
_NAME = re.compile(r"[A-Z0-9][A-Z0-9_-]*")


def canonical_modality(value: Any) -> str:
    """The canonical spelling of a modality name: stripped, upper case (``" us "`` -> ``"US"``)."""
    return str(value).strip().upper()


def modality_name_problem(value: Any) -> str | None:
    """Why a modality name cannot be used, or ``None`` when it can.

    Args:
        value: the name as written.
    """
    name = canonical_modality(value)
    if not name:
        return "missing value"
    if len(name) > MAX_MODALITY_LENGTH:
        return f"modality name {name[:40]!r}... is longer than {MAX_MODALITY_LENGTH} characters"
    if not _NAME.fullmatch(name) or "__" in name:
        return (f"modality name {str(value).strip()!r} may use only letters, digits, '_' and '-' (no '__'), "
                f"e.g. {', '.join(MODALITY_CONVENTIONS)}, MRI_T2, DCE")
    return None


def checked_modality(value: Any) -> str:
    """The canonical name, or ``ValueError`` saying why the name cannot be used."""
    problem = modality_name_problem(value)
    if problem:
        raise ValueError(problem)
    return canonical_modality(value)

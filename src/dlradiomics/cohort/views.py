"""Views (mammography CC / MLO, an MRI sequence ...): which images of a modality a study uses.

The manifest's optional ``view`` column is free text, matched case-insensitively and stripped
(``" cc "`` is ``CC``). A view filter maps a modality to the views kept, e.g. ``{"MG": ["CC"]}``
for the paper's craniocaudal mammograms; modalities it does not name keep every image. An image of
a filtered modality whose view is another one, or blank, is left out, and :func:`view_filter`
says why, so that the study can count and name it like every other row it does not use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from dlradiomics.cohort.validation import text_value

_VIEW_NAME = re.compile(r"^[A-Z0-9][A-Z0-9_\-. ]*$")
MAX_VIEW_LENGTH = 32


def canonical_view(value) -> str | None:
    """The canonical spelling of a view: stripped, upper case; ``None`` for a blank cell."""
    text = text_value(value)
    return text.upper() if text else None


def checked_view(value: str) -> str:
    """A view name as a study file gives it, canonical; refuses blanks and odd characters.

    Raises:
        ValueError: the name is blank, too long or holds characters other than letters, digits,
            ``_``, ``-``, ``.`` and spaces.
    """
    view = canonical_view(value)
    if view is None:
        raise ValueError("a view name may not be blank")
    if len(view) > MAX_VIEW_LENGTH or not _VIEW_NAME.match(view):
        raise ValueError(f"view name {value!r} may use only letters, digits, '_', '-', '.' and spaces "
                         f"(at most {MAX_VIEW_LENGTH} characters)")
    return view


@dataclass(frozen=True)
class ViewSelection:
    """The rows a view filter keeps, and those it leaves out with the reason for each.

    Args:
        kept: the rows kept (all columns of the input, same order).
        left_out: the rows left out, with an added ``reason`` column.
    """

    kept: pd.DataFrame
    left_out: pd.DataFrame


def view_filter(table: pd.DataFrame, views: Mapping[str, Sequence[str]] | None) -> ViewSelection:
    """Keep the rows whose view a filter allows for their modality.

    Args:
        table: cohort rows with ``modality`` and (optionally) ``view`` columns.
        views: canonical modality -> the views kept (canonical); ``None`` or empty keeps all.

    Returns:
        The kept rows (index reset) and the rows left out, each with its ``reason``.
    """
    if not views:
        return ViewSelection(table.reset_index(drop=True), table.iloc[0:0].assign(reason=pd.Series(dtype=str)))
    row_views = table["view"] if "view" in table else pd.Series([None] * len(table), index=table.index)
    reasons = [view_reason(modality, view, views) for modality, view in zip(table["modality"], row_views)]
    left = pd.Series([reason is not None for reason in reasons], index=table.index)
    left_out = table[left].assign(reason=[reason for reason in reasons if reason is not None])
    return ViewSelection(table[~left].reset_index(drop=True), left_out)


def view_reason(modality: str, view, views: Mapping[str, Sequence[str]]) -> str | None:
    """Why an image of ``modality`` with ``view`` is left out by ``views``; ``None`` when it is kept."""
    allowed = views.get(modality)
    if not allowed:
        return None
    shown = canonical_view(view)
    if shown in allowed:
        return None
    wanted = ", ".join(allowed)
    if shown is None:
        return f"no view given, and the {modality} images used are of view(s) {wanted} (fill the view column)"
    return f"view {shown} of {modality} is not among the views used for {modality} ({wanted})"

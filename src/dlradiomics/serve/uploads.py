"""Uploaded files of one case -> checked images and masks on disk and a one-patient manifest.

The viewer goes through the same manifest-based prediction as `dlradiomics predict`, so the uploads
are first written as files and described by a manifest. Each pair is read here with the same reader
that prediction uses, so that a bad upload gets a message naming the modality and the user's own
file name (not a temporary path) before any feature is computed.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

CASE_PATIENT_ID = "case"
ROLES = ("image", "mask")
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


class UploadError(ValueError):
    """An upload that cannot be used; the message says which file, what is wrong and what to do."""


@dataclass(frozen=True)
class CaseFiles:
    """The case written to disk.

    Args:
        manifest: the one-patient manifest (CSV, no label column).
        modalities: the modalities uploaded, in the model's order.
        notices: what the reader noted about the files (a colour image made grey, a JPEG mask ...).
    """

    manifest: Path
    modalities: list[str]
    notices: list[str]


@dataclass(frozen=True)
class UploadedFile:
    """One uploaded file.

    Args:
        filename: the name the user's browser sent (used in messages and to keep the format suffix).
        content: the file's bytes.
    """

    filename: str
    content: bytes


def safe_file_name(filename: str, fallback: str) -> str:
    """A file name that cannot leave its folder, keeping the suffix that tells the image format.

    Args:
        filename: the name sent by the browser (may hold folders, spaces or anything else).
        fallback: the name to use when nothing usable is left.
    """
    name = _UNSAFE_NAME_CHARACTERS.sub("_", Path(filename.replace("\\", "/")).name).strip("._")
    return name or fallback


def write_case_manifest(uploads: Mapping[str, Mapping[str, UploadedFile]], modalities: Sequence[str],
                        folder: Path) -> CaseFiles:
    """Write the uploaded images and masks under `folder` and a manifest of them; check each pair.

    Args:
        uploads: `{modality: {"image": UploadedFile, "mask": UploadedFile}}`; a modality may be absent.
        modalities: the modalities the model uses, in the model's order.
        folder: an empty working folder for this case.

    Returns:
        The manifest (CSV, one row per uploaded modality, no label column) and the reader's notices.

    Raises:
        UploadError: no modality given, an image without its mask (or the reverse), an unused
            modality, or a pair the reader refuses (not an image, sizes differ, empty mask ...).
    """
    from dlradiomics.io import ImageReadError, load_roi

    unknown = sorted(set(uploads) - set(modalities))
    if unknown:
        raise UploadError(f"this model uses {', '.join(modalities)}; it has no use for {', '.join(unknown)}")
    given = [modality for modality in modalities if any(uploads.get(modality, {}).get(role) for role in ROLES)]
    if not given:
        raise UploadError(f"upload an image and its mask for {_either(modalities)} (this model uses "
                          f"{', '.join(modalities)})")
    rows, notices = [], []
    for modality in given:
        files = uploads[modality]
        missing = [role for role in ROLES if not files.get(role)]
        if missing:
            present = next(role for role in ROLES if files.get(role))
            raise UploadError(f"{modality}: the {present} '{files[present].filename}' came without its {missing[0]}; "
                              f"upload both, or neither")
        paths = {}
        for role in ROLES:
            upload = files[role]
            if not upload.content:
                raise UploadError(f"{modality} {role} '{upload.filename}': the file is empty")
            target = folder / modality / role / safe_file_name(upload.filename, role)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(upload.content)
            paths[role] = target
        user_names = {str(paths[role]): f"{modality} {role} '{files[role].filename}'" for role in ROLES}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                load_roi(paths["image"], paths["mask"])
        except ImageReadError as error:
            raise UploadError(_in_user_names(f"{error.path}: {error.problem}", user_names)) from None
        notices += [_in_user_names(str(warning.message), user_names) for warning in caught]
        rows.append({"patient_id": CASE_PATIENT_ID, "modality": modality, "image": str(paths["image"]),
                     "mask": str(paths["mask"])})
    manifest = folder / "case_manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return CaseFiles(manifest=manifest, modalities=given, notices=notices)


def _in_user_names(message: str, user_names: Mapping[str, str]) -> str:
    # The reader names the temporary files; the user knows them by modality and their own names.
    for path, name in user_names.items():
        message = message.replace(path, name)
    return message


def _either(modalities: Sequence[str]) -> str:
    return modalities[0] if len(modalities) == 1 else f"at least one of {', '.join(modalities)}"

"""Modelling tables: image-level feature tables turned into one table of named feature blocks.

A feature block is ``"{modality}.{kind}"`` (``US.radiomic``, ``MG.deep``) and a column of a
modelling table is ``"{block}__{feature}"``. The index of a modelling table is ``patient_id``
(it may repeat when rows are images); every estimator in :mod:`dlradiomics.models` reads the
patient groups for its inner cross-validation from that index, so images of one patient never
straddle an inner split.

Clinical variables (see :mod:`dlradiomics.models.clinical`) form one block, ``clinical``, whatever
the modalities: they describe the patient. Their feature table is image-level like the others
(the patient's values on each of the patient's image rows); they join the rows the imaging blocks
have, and never add a row of their own, except in a table of clinical variables alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from dlradiomics.models.clinical import CLINICAL_BLOCK, CLINICAL_KIND
from dlradiomics.schema import META_COLUMNS

BLOCK_SEPARATOR = "__"
FEATURE_KINDS = ("radiomic", "deep", CLINICAL_KIND)
LEVELS = ("image", "patient")


def block_name(modality: str, kind: str) -> str:
    """Name of the feature block of one modality and feature kind, e.g. ``"US.radiomic"``.

    The clinical kind has one block for all modalities, ``"clinical"``.
    """
    return CLINICAL_BLOCK if kind == CLINICAL_KIND else f"{modality}.{kind}"


def blocks_of(columns: Iterable[str]) -> dict[str, list[str]]:
    """Group modelling-table columns by feature block, keeping their order.

    Args:
        columns: column names of the form ``"{block}__{feature}"``.

    Returns:
        Mapping from block name to the list of its columns, blocks in order of first appearance.

    Raises:
        ValueError: when a column does not follow the ``"{block}__{feature}"`` naming.
    """
    blocks: dict[str, list[str]] = {}
    for column in columns:
        column = str(column)
        block, separator, feature = column.partition(BLOCK_SEPARATOR)
        if not separator or not block or not feature:
            raise ValueError(
                f"column {column!r} is not named '{{modality}}.{{kind}}__{{feature}}'; "
                "build modelling tables with dlradiomics.models.build_model_table"
            )
        blocks.setdefault(block, []).append(column)
    return blocks


def table_level(modalities: Sequence[str]) -> str:
    """Rows of the modelling table of some modalities: ``"image"`` for one, ``"patient"`` for several.

    Images of different modalities of one patient cannot be paired one to one, so several
    modalities meet at patient level; one modality keeps its images as rows (predictions are
    averaged per patient afterwards).
    """
    return "image" if len(modalities) == 1 else "patient"


def modality_of(block: str) -> str:
    """Modality part of a block name (``"US.radiomic"`` -> ``"US"``)."""
    return block.split(".", 1)[0]


def kind_of(block: str) -> str:
    """Feature-kind part of a block name (``"US.deep"`` -> ``"deep"``; ``""`` when the name has none)."""
    return block.split(".", 1)[1] if "." in block else ""


def feature_columns_of(table: pd.DataFrame) -> list[str]:
    """Numeric feature columns of an image-level feature table (meta and diagnostics left out)."""
    return [
        column
        for column in table.columns
        if column not in META_COLUMNS
        and not str(column).startswith("diagnostics")
        and pd.api.types.is_numeric_dtype(table[column])
    ]


def _check_feature_table(kind: str, table: pd.DataFrame) -> None:
    missing = [column for column in ("roi_id", "patient_id", "modality", "label") if column not in table]
    if missing:
        raise ValueError(f"{kind} feature table lacks the meta column(s) {missing}")
    duplicated = table["roi_id"][table["roi_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{kind} feature table has repeated roi_id values, e.g. {duplicated.iloc[0]!r}")


def _labels_by_patient(rows: pd.DataFrame) -> pd.Series:
    """One label per patient; a patient whose images disagree is an error naming the patient."""
    label_counts = rows.groupby("patient_id", sort=False)["label"].nunique()
    conflicting = label_counts[label_counts > 1].index.tolist()
    if conflicting:
        raise ValueError(
            f"patients {conflicting[:5]} have images with different labels; a patient-level "
            "table needs one label per patient (split such patients into lesions in the manifest)"
        )
    return rows.groupby("patient_id", sort=False)["label"].first().astype(int)


def _block_frame(table: pd.DataFrame, modality: str, kind: str) -> pd.DataFrame:
    rows = table[table["modality"] == modality]
    features = feature_columns_of(table)
    renamed = {feature: f"{block_name(modality, kind)}{BLOCK_SEPARATOR}{feature}" for feature in features}
    return rows[["roi_id", "patient_id", "label", *features]].rename(columns=renamed)


def build_model_table(
    feature_tables: dict[str, pd.DataFrame],
    modalities: Sequence[str],
    kinds: Sequence[str],
    level: str = "image",
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Build the modelling table of some modalities and feature kinds.

    Rows are images when ``level="image"`` (one modality only): the radiomic and deep rows of
    one ``roi_id`` are joined (outer join, so an image whose deep or radiomic extraction failed
    keeps its other block, with NaN in the failed one); predictions are averaged per patient
    later (:func:`dlradiomics.models.aggregate_by_patient`).

    Rows are patients when ``level="patient"`` (required for several modalities, since images
    of different modalities of one patient cannot be paired one to one): each block holds the
    mean of that patient's image features of that modality, and a patient lacking a modality
    has NaN in that whole block (late fusion then uses the blocks the patient has).

    Args:
        feature_tables: image-level feature tables by kind (``"radiomic"``, ``"deep"``), each with
            the meta columns ``roi_id, patient_id, modality, label`` and feature columns.
        modalities: modalities to include, e.g. ``["US"]`` or ``["US", "MG"]``.
        kinds: feature kinds to include, e.g. ``["radiomic", "deep"]``.
        level: ``"image"`` or ``"patient"``.

    Returns:
        ``(X, y, groups)``: X with ``"{modality}.{kind}__{feature}"`` columns and ``patient_id``
        index, the integer labels y and the patient groups (both indexed like X).

    Raises:
        ValueError: on an unknown level or kind, several modalities at image level, a modality
            absent from a table, or a patient whose images carry different labels.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if not modalities or not kinds:
        raise ValueError("build_model_table needs at least one modality and one feature kind")
    if level == "image" and len(modalities) > 1:
        raise ValueError(
            f"several modalities {list(modalities)} cannot share image-level rows; use level='patient'"
        )
    for kind in kinds:
        if kind not in feature_tables:
            raise ValueError(f"no {kind!r} feature table given (have {sorted(feature_tables)})")
        _check_feature_table(kind, feature_tables[kind])
        present = set(feature_tables[kind]["modality"].unique())
        absent = [modality for modality in modalities if modality not in present]
        if absent:
            raise ValueError(f"the {kind} feature table has no rows of modality {absent} (has {sorted(present)})")

    if level == "image":
        return _image_level_table(feature_tables, modalities[0], kinds)
    return _patient_level_table(feature_tables, modalities, kinds)


def _imaging_kinds_first(kinds: Sequence[str]) -> list[str]:
    """Kinds with the clinical kind last: clinical values join the rows the imaging blocks have."""
    return [kind for kind in kinds if kind != CLINICAL_KIND] + [kind for kind in kinds if kind == CLINICAL_KIND]


def _image_level_table(
    feature_tables: dict[str, pd.DataFrame], modality: str, kinds: Sequence[str]
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    joined: pd.DataFrame | None = None
    for kind in _imaging_kinds_first(kinds):
        frame = _block_frame(feature_tables[kind], modality, kind)
        if joined is None:
            joined = frame
            continue
        # An image's clinical values never make a row of their own: an image without imaging
        # features (extraction failed) stays out, as it would without clinical variables.
        how = "left" if kind == CLINICAL_KIND else "outer"
        joined = joined.merge(frame, on="roi_id", how=how, suffixes=("", "_other"))
        for meta in ("patient_id", "label"):
            other = joined.pop(f"{meta}_other")
            disagree = joined[meta].notna() & other.notna() & (joined[meta] != other)
            if disagree.any():
                roi = joined.loc[disagree, "roi_id"].iloc[0]
                raise ValueError(f"roi_id {roi!r}: the feature tables disagree on its {meta}")
            joined[meta] = joined[meta].fillna(other)
    assert joined is not None
    joined = joined.sort_values("roi_id", kind="stable")
    _labels_by_patient(joined)
    patient_ids = joined["patient_id"].astype(str)
    features = joined.drop(columns=["roi_id", "patient_id", "label"])
    features.index = pd.Index(patient_ids.to_numpy(), name="patient_id")
    labels = pd.Series(joined["label"].astype(int).to_numpy(), index=features.index, name="label")
    groups = pd.Series(patient_ids.to_numpy(), index=features.index, name="patient_id")
    return features.astype(np.float64), labels, groups


def _patient_level_table(
    feature_tables: dict[str, pd.DataFrame], modalities: Sequence[str], kinds: Sequence[str]
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    block_means = []
    label_rows = []
    for modality in modalities:
        for kind in kinds:
            if kind == CLINICAL_KIND:
                continue
            frame = _block_frame(feature_tables[kind], modality, kind)
            frame["patient_id"] = frame["patient_id"].astype(str)
            label_rows.append(frame[["patient_id", "label"]])
            block_means.append(frame.drop(columns=["roi_id", "label"]).groupby("patient_id", sort=True).mean())
    if CLINICAL_KIND in kinds:
        clinical = _patient_clinical_block(feature_tables[CLINICAL_KIND], modalities)
        if block_means:
            # Clinical values join the patients the imaging blocks have; they add none of their own.
            imaged = pd.Index(sorted(set().union(*(frame.index for frame in block_means))))
            clinical = clinical[clinical.index.isin(imaged)]
        else:
            label_rows.append(clinical[["label"]].reset_index())
        block_means.append(clinical.drop(columns="label"))
    labels = _labels_by_patient(pd.concat(label_rows, ignore_index=True))
    features = pd.concat(block_means, axis=1, join="outer")
    features = features.loc[sorted(features.index)]
    features.index.name = "patient_id"
    labels = labels.reindex(features.index).rename("label")
    groups = pd.Series(features.index.to_numpy(), index=features.index, name="patient_id")
    return features.astype(np.float64), labels.astype(int), groups


def _patient_clinical_block(table: pd.DataFrame, modalities: Sequence[str]) -> pd.DataFrame:
    """One row per patient of the clinical block (with ``label``), from the rows of the given modalities.

    Raises:
        ValueError: a patient whose rows carry different values of a clinical variable.
    """
    frame = pd.concat([_block_frame(table, modality, CLINICAL_KIND) for modality in modalities], ignore_index=True)
    frame["patient_id"] = frame["patient_id"].astype(str)
    values = frame.drop(columns="roi_id")
    grouped = values.groupby("patient_id", sort=True)
    differing = grouped.nunique(dropna=False).drop(columns="label").gt(1)
    if differing.to_numpy().any():
        patient = differing.index[differing.any(axis=1)][0]
        column = differing.columns[differing.loc[patient]][0]
        raise ValueError(f"patient {patient}: the clinical variable {column!r} differs between the patient's rows; "
                         "clinical variables are one value per patient")
    return grouped.first()


def aggregate_by_patient(proba: Sequence[float] | np.ndarray, patient_ids: Sequence, method: str = "mean") -> pd.Series:
    """Aggregate image-level probabilities to one probability per patient.

    Args:
        proba: probability of malignancy per row (NaN where a row has no prediction).
        patient_ids: the patient of each row, same length as ``proba``.
        method: ``"mean"`` (default) or ``"max"`` (the most suspicious image decides).

    Returns:
        Series of probabilities indexed by ``patient_id`` in order of first appearance; NaN rows
        are ignored, and a patient with no prediction at all gets NaN.

    Raises:
        ValueError: on an unknown method or when the lengths differ.
    """
    if method not in ("mean", "max"):
        raise ValueError(f"method must be 'mean' or 'max', got {method!r}")
    values = np.asarray(proba, dtype=float)
    if values.ndim == 2 and values.shape[1] == 2:
        raise ValueError("pass the probability of the positive class (proba[:, 1]), not the whole matrix")
    patients = np.asarray(patient_ids)
    if values.shape != patients.shape:
        raise ValueError(f"proba has {values.shape} entries but patient_ids has {patients.shape}")
    grouped = pd.Series(values).groupby(pd.Index(patients, name="patient_id"), sort=False)
    aggregated = grouped.mean() if method == "mean" else grouped.max()
    return aggregated.rename("proba")

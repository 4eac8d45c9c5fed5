"""What the training data looked like, so that inputs unlike it are flagged rather than scored silently.

Two records travel in `bundle.json`:

- `FeatureRange` per feature column: the 0.5th/99.5th percentiles and the minimum/maximum of the
  training rows. A new value beyond the training minimum/maximum by more than `RANGE_MARGIN` of
  the training span is flagged (the percentiles are kept for the reader; flagging at them would
  mark most patients of a model with hundreds of features). On BUS-BRA radiomic features
  (`bench/feature_range_flags.py`) this flags under 1% of held-out images of a model trained on
  800 patients, and a 16-bit copy of any 8-bit image.
- `TrainingIntensityProfile` per modality: the storage types and bit depths of the training images
  and their intensity range under io's intensity convention (over all images, and of each image's
  robust 0.5th/99.5th percentiles), built from each image's `dlradiomics.io.IntensityProfile`.
  A new image stored differently is named; one whose intensities leave that range (a rescaled
  export, a 16-bit file holding unscaled 8-bit values, another device) is flagged, since its
  features are computed from numbers the model never saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from dlradiomics.io import IntensityProfile
from dlradiomics.models.blocks import blocks_of
from dlradiomics.models.clinical import CLINICAL_BLOCK

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ROBUST_PERCENTILES = (0.5, 99.5)
RANGE_MARGIN = 0.25  # fraction of the training span a value may exceed the training min/max by
DARKER_FACTOR = 0.5  # an image whose 99.5th percentile is below half the darkest training image's
NAMED_LIMIT = 3  # features named in one warning; the rest are counted


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureRange(_Record):
    """The training distribution of one feature column.

    Args:
        low: 0.5th percentile.
        high: 99.5th percentile.
        minimum: smallest training value.
        maximum: largest training value.
    """

    low: FiniteFloat
    high: FiniteFloat
    minimum: FiniteFloat
    maximum: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> FeatureRange:
        if not self.minimum <= self.low <= self.high <= self.maximum:
            raise ValueError("needs minimum <= low <= high <= maximum")
        return self

    def limits(self) -> tuple[float, float]:
        """The values beyond which a new value is flagged."""
        margin = RANGE_MARGIN * (self.maximum - self.minimum)
        return self.minimum - margin, self.maximum + margin


def feature_ranges(table: pd.DataFrame) -> dict[str, FeatureRange | None]:
    """The training range of every column of a modelling table (None for a column with no finite value)."""
    ranges: dict[str, FeatureRange | None] = {}
    for column in table.columns:
        values = table[column].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            ranges[str(column)] = None
            continue
        low, high = np.percentile(values, ROBUST_PERCENTILES)
        ranges[str(column)] = FeatureRange(low=float(low), high=float(high), minimum=float(values.min()),
                                           maximum=float(values.max()))
    return ranges


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:NAMED_LIMIT])
    return shown + (f" and {len(items) - NAMED_LIMIT} more" if len(items) > NAMED_LIMIT else "")


def feature_warnings(table: pd.DataFrame, ranges: Mapping[str, FeatureRange | None], *,
                     model_handles_missing_blocks: bool) -> pd.Series:
    """Per patient: feature values outside the training range, and values missing within a block.

    Args:
        table: modelling table (index `patient_id`, repeated for image rows), columns as `ranges`.
        ranges: training range per column (None: the column had no finite training value).
        model_handles_missing_blocks: the model scores without an absent block (late fusion); else
            a block absent from a row is filled in by the model and flagged.

    Returns:
        One text per patient (index `patient_id`, in order of first appearance); empty when nothing is wrong.
        A patient's image rows are taken together: each flagged feature is named once, with the
        value furthest outside its range.
    """
    columns = [column for column in table.columns if column in ranges]
    values = table[columns].to_numpy(dtype=np.float64)
    lower = np.array([ranges[c].limits()[0] if ranges[c] is not None else np.inf for c in columns])
    upper = np.array([ranges[c].limits()[1] if ranges[c] is not None else -np.inf for c in columns])
    with np.errstate(invalid="ignore"):
        excess = np.where(np.isnan(values), 0.0, np.maximum(lower - values, values - upper))
    excess = np.maximum(excess, 0.0)  # > 0 where a value lies outside its limits
    missing = np.isnan(values)
    blocks = {block: [columns.index(column) for column in block_columns]
              for block, block_columns in blocks_of(columns).items()}
    patients = table.index.astype(str)
    messages = {}
    for patient in dict.fromkeys(patients):
        rows = np.flatnonzero(patients == patient)
        notes = []
        flagged = np.flatnonzero(excess[rows].max(axis=0) > 0)
        if flagged.size:
            described = []
            for k in flagged[np.argsort(-excess[rows][:, flagged].max(axis=0) / _spans(ranges, columns, flagged))]:
                known = ranges[columns[k]]
                value = values[rows[np.argmax(excess[rows, k])], k]
                training = f"training {known.minimum:.4g} to {known.maximum:.4g}" if known else "no training value"
                described.append(f"{columns[k]} = {value:.4g} ({training})")
            notes.append(f"{flagged.size} feature value(s) outside the training range: {_listed(described)}")
        for block, positions in blocks.items():
            if block == CLINICAL_BLOCK:
                continue  # missing clinical values are named one by one where they are read (study.clinical)
            absent = missing[np.ix_(rows, positions)].sum(axis=1)
            if ((absent > 0) & (absent < len(positions))).any():
                notes.append(f"{block}: {int(absent.max())} of {len(positions)} feature values missing "
                             "(filled in by the model)")
            elif (absent == len(positions)).any() and not model_handles_missing_blocks:
                notes.append(f"{block}: no feature values (filled in by the model)")
        messages[patient] = "; ".join(notes)
    return pd.Series(messages, dtype=object, name="warnings")


def _spans(ranges: Mapping[str, FeatureRange | None], columns: list[str], positions: np.ndarray) -> np.ndarray:
    """Training span of some columns (1 where unknown or zero), to rank deviations on a common scale."""
    spans = np.array([(ranges[columns[k]].maximum - ranges[columns[k]].minimum) if ranges[columns[k]] else 1.0
                      for k in positions])
    return np.where(spans > 0, spans, 1.0)


class TrainingIntensityProfile(_Record):
    """The training images of one modality (built from each image's `dlradiomics.io.IntensityProfile`).

    Args:
        n_images: images measured.
        dtypes: their stored pixel types.
        bit_depths: their bit depths (integer types only).
        minimum: smallest intensity of any training image.
        maximum: largest intensity of any training image.
        low_range: lowest and highest per-image 0.5th percentile.
        high_range: lowest and highest per-image 99.5th percentile.
    """

    n_images: PositiveInt
    dtypes: list[str] = Field(min_length=1)
    bit_depths: list[PositiveInt]
    minimum: FiniteFloat
    maximum: FiniteFloat
    low_range: tuple[FiniteFloat, FiniteFloat]
    high_range: tuple[FiniteFloat, FiniteFloat]

    @model_validator(mode="after")
    def _ordered(self) -> TrainingIntensityProfile:
        if not (self.minimum <= self.maximum and self.low_range[0] <= self.low_range[1]
                and self.high_range[0] <= self.high_range[1]):
            raise ValueError("needs minimum <= maximum and each range as (lowest, highest)")
        return self

    @classmethod
    def of(cls, images: Sequence[IntensityProfile]) -> TrainingIntensityProfile:
        """The profile of a modality from its training images' profiles."""
        if not images:
            raise ValueError("an intensity profile needs at least one image")
        lows = [image.percentiles[ROBUST_PERCENTILES[0]] for image in images]
        highs = [image.percentiles[ROBUST_PERCENTILES[1]] for image in images]
        return cls(
            n_images=len(images),
            dtypes=sorted({image.dtype for image in images}),
            bit_depths=sorted({image.bit_depth for image in images if image.bit_depth is not None}),
            minimum=min(image.minimum for image in images), maximum=max(image.maximum for image in images),
            low_range=(min(lows), max(lows)), high_range=(min(highs), max(highs)))

    def describe(self) -> str:
        """'uint8 (8-bit), intensities 0 to 255' for messages."""
        bits = f" ({', '.join(f'{bits}-bit' for bits in self.bit_depths)})" if self.bit_depths else ""
        return f"{', '.join(self.dtypes)}{bits}, intensities {self.minimum:.4g} to {self.maximum:.4g}"

    def deviations(self, image: IntensityProfile) -> list[str]:
        """How a new image differs from the training images (empty when it fits the profile).

        Args:
            image: the new image's profile (`dlradiomics.io.RoiImage.intensity_profile()`).
        """
        found = []
        if image.dtype not in self.dtypes or (image.bit_depth is not None and image.bit_depth not in self.bit_depths):
            bits = f" ({image.bit_depth}-bit)" if image.bit_depth else ""
            found.append(f"stored as {image.dtype}{bits}, unlike the training images")
        low, high = image.percentiles[ROBUST_PERCENTILES[0]], image.percentiles[ROBUST_PERCENTILES[1]]
        if low < self.minimum or high > self.maximum:
            found.append(f"intensities {low:.4g} to {high:.4g} (0.5th-99.5th percentile) beyond the training range")
        elif self.high_range[0] > 0 and high < DARKER_FACTOR * self.high_range[0]:
            found.append(f"99.5th percentile {high:.4g}, under half of the darkest training image's "
                         f"({self.high_range[0]:.4g})")
        return found

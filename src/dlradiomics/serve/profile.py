"""Where a case's key features fall against the training distribution.

The key features are the ones the fitted model reads after its feature selection, ranked by the
size of the classifier's weight (coefficient or importance). Their training distribution comes
from the bundle itself: the training range recorded in `bundle.json` when the bundle has one,
otherwise the statistics the fitted pipeline learnt on the training rows (the standard scaler's
mean and standard deviation, or the imputer's median when the model does not scale).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dlradiomics.models.terms import block_pipelines, classifier_weights

logger = logging.getLogger(__name__)

KEY_FEATURE_LIMIT = 8
BLOCK_SEPARATOR = "__"


@dataclass(frozen=True)
class FeaturePosition:
    """One key feature of a case beside its training distribution.

    Args:
        column: modelling-table column, `"{block}__{feature}"`.
        value: the case's value (NaN when the case has no value for it).
        reference: what `low`/`high` are, in words (e.g. "training mean ± 2 SD").
        low: lower end of the training reference.
        high: upper end of the training reference.
        centre: the training centre (mean or median), when known.
        spread: the training standard deviation, when known.
        weight: the classifier's weight for this feature (sign: towards malignant when positive).
    """

    column: str
    value: float
    reference: str
    low: float | None
    high: float | None
    centre: float | None
    spread: float | None
    weight: float | None

    @property
    def block(self) -> str:
        """The feature block, e.g. `US.radiomic`."""
        return self.column.split(BLOCK_SEPARATOR, 1)[0]

    @property
    def feature(self) -> str:
        """The feature's own name, e.g. `original_shape2D_Elongation`."""
        return self.column.split(BLOCK_SEPARATOR, 1)[-1]

    @property
    def z_score(self) -> float | None:
        """Standard deviations from the training mean, when both are known."""
        if self.centre is None or not self.spread or math.isnan(self.value):
            return None
        return (self.value - self.centre) / self.spread

    @property
    def outside(self) -> bool:
        """Whether the value lies outside the training reference."""
        if math.isnan(self.value) or self.low is None or self.high is None:
            return False
        return not self.low <= self.value <= self.high

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (NaN as None) with the derived fields."""
        record = asdict(self) | {"block": self.block, "feature": self.feature, "z_score": self.z_score,
                                 "outside": self.outside}
        return {key: None if isinstance(value, float) and math.isnan(value) else value
                for key, value in record.items()}


Statistics = dict[str, tuple[float | None, float | None]]


def _pipeline_statistics(pipeline: Any) -> tuple[list[str], Statistics, np.ndarray | None]:
    """(selected columns, {column: (centre, spread)}, classifier weights) of one fitted pipeline."""
    steps = [name for name, _ in pipeline.steps]
    selected = [str(name) for name in pipeline[:-1].get_feature_names_out()]
    statistics: dict[str, tuple[float | None, float | None]] = {}
    if "scale" in steps:
        position = steps.index("scale")
        scaler = pipeline.steps[position][1]
        names = [str(name) for name in pipeline[:position].get_feature_names_out()]
        for name, mean, scale in zip(names, scaler.mean_, scaler.scale_):
            statistics[name] = (float(mean), float(scale))
    elif "impute" in steps:
        imputer = pipeline.named_steps["impute"]
        for name, median in zip(imputer.feature_names_in_, imputer.statistics_):
            statistics[str(name)] = (float(median), None)
    return selected, statistics, classifier_weights(pipeline[-1], len(selected))[0]


def training_ranges(bundle: Any) -> dict[str, tuple[float, float]]:
    """`{column: (smallest, largest training value)}` from the ranges `bundle.json` records.

    The bundle also records robust percentiles; the full range is shown because a value inside it
    was seen in training, which is what a reader of one case wants to know.
    """
    return {column: (float(found.minimum), float(found.maximum))
            for column, found in bundle.metadata.feature_ranges.items() if found is not None}


def key_feature_positions(model: Any, ranges: Mapping[str, tuple[float, float]], case_values: Mapping[str, float],
                          limit: int = KEY_FEATURE_LIMIT) -> list[FeaturePosition]:
    """The model's key features for one case, each beside its training reference.

    Args:
        model: the bundle's fitted model.
        ranges: training ranges by column (`training_ranges`); a column without one falls back to the
            pipeline's training mean ± 2 SD.
        case_values: the case's modelling-table values by column (missing columns count as NaN).
        limit: at most this many features, the largest classifier weights first.

    Returns:
        Positions of the selected features that the case has a block for, largest |weight| first.
    """
    candidates: list[FeaturePosition] = []
    for pipeline in block_pipelines(model).values():
        try:
            selected, statistics, weights = _pipeline_statistics(pipeline)
        except (AttributeError, ValueError, TypeError) as error:  # a model shape this view does not know
            logger.info("no training statistics from %s: %s", type(pipeline[-1]).__name__, error)
            continue
        for index, column in enumerate(selected):
            value = float(case_values.get(column, math.nan))
            centre, spread = statistics.get(column, (None, None))
            if column in ranges:
                (low, high), reference = ranges[column], "training range (smallest to largest)"
            elif centre is not None and spread:
                low, high, reference = centre - 2 * spread, centre + 2 * spread, "training mean ± 2 SD"
            else:
                low, high, reference = None, None, "training median" if centre is not None else "unknown"
            weight = None if weights is None else float(weights[index])
            candidates.append(FeaturePosition(column, value, reference, low, high, centre, spread, weight))
    present = [position for position in candidates if not math.isnan(position.value)]
    present.sort(key=lambda position: -abs(position.weight) if position.weight is not None else 0.0)
    return present[:limit]

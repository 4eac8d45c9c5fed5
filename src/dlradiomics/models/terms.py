"""What a fitted model reads: the features it kept after selection, and the weight it gives each.

A model of this package is a pipeline (impute -> drop constant -> [scale] -> selectors ->
classifier) or a fusion of such pipelines. Its *terms* are the columns that reach each pipeline's
classifier (`get_feature_names_out` of the steps before it) with the classifier's weight for each:
a coefficient for a linear model (per standard deviation of the feature when the pipeline scales),
an impurity importance for a tree ensemble, none for a model without per-feature weights (RBF SVM,
KNN). Columns made by a reduction (PCA components of deep or DLR blocks) are marked `derived`: they
are not features a reader can name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from dlradiomics.models.blocks import BLOCK_SEPARATOR

TERM_COLUMNS = ["block", "feature", "column", "weight", "weight_kind", "derived"]
# What `weight` means, by how the classifier exposes it.
COEFFICIENT_PER_SD = "coefficient per SD"  # linear model after standardisation: log odds ratio per SD
COEFFICIENT = "coefficient"  # linear model on unscaled inputs
IMPURITY_IMPORTANCE = "impurity importance"  # tree ensembles' feature_importances_
NO_WEIGHT = "none"


def block_pipelines(model: Any) -> dict[str, Pipeline]:
    """The fitted pipelines of a model that read modelling-table columns, by the block they read.

    A single-block model and early fusion are one pipeline over all their columns (key ``"all"``);
    late fusion keeps one pipeline per block (key: the block, e.g. ``"US.radiomic"``); a DLR
    fusion's pipelines read PCA components of the joined blocks (its inner fusion's pipelines).
    """
    if isinstance(model, Pipeline):
        return {"all": model}
    if isinstance(getattr(model, "pipeline_", None), Pipeline):  # early fusion
        return {"all": model.pipeline_}
    block_models = getattr(model, "block_models_", None)  # late fusion
    if isinstance(block_models, Mapping):
        return {str(block): pipeline for block, pipeline in block_models.items() if isinstance(pipeline, Pipeline)}
    inner = getattr(model, "fusion_", None)  # DLR fusion wraps a fusion over its reduced parts
    return block_pipelines(inner) if inner is not None else {}


def classifier_weights(classifier: Any, count: int) -> tuple[np.ndarray | None, str]:
    """The per-feature weights of a fitted classifier and what they are, or ``(None, "none")``."""
    fitted = getattr(classifier, "best_estimator_", classifier)  # a hyper-parameter search keeps the best
    coefficients = getattr(fitted, "coef_", None)
    if coefficients is not None and np.asarray(coefficients).size == count:
        return np.asarray(coefficients, dtype=float).reshape(-1), COEFFICIENT
    importances = getattr(fitted, "feature_importances_", None)
    if importances is not None and np.asarray(importances).size == count:
        return np.asarray(importances, dtype=float).reshape(-1), IMPURITY_IMPORTANCE
    return None, NO_WEIGHT


def pipeline_terms(pipeline: Pipeline, block: str = "all") -> pd.DataFrame:
    """The terms of one fitted pipeline (`TERM_COLUMNS`), in the order its classifier reads them.

    Args:
        pipeline: a fitted pipeline ending in its classifier.
        block: the block it reads (``"all"``: each column's own block is taken from its name).
    """
    columns = [str(name) for name in pipeline[:-1].get_feature_names_out()]
    weights, kind = classifier_weights(pipeline[-1], len(columns))
    step_names = [name for name, _ in pipeline.steps]
    if kind == COEFFICIENT and "scale" in step_names:
        kind = COEFFICIENT_PER_SD
    inputs = {str(name) for name in getattr(pipeline, "feature_names_in_", [])}
    rows = []
    for position, column in enumerate(columns):
        own_block, _, feature = column.rpartition(BLOCK_SEPARATOR)
        rows.append({
            "block": own_block if block == "all" and own_block else block,
            "feature": feature or column,
            "column": column,
            "weight": np.nan if weights is None else float(weights[position]),
            "weight_kind": kind,
            "derived": column not in inputs,
        })
    return pd.DataFrame(rows, columns=TERM_COLUMNS)


def model_terms(model: Any) -> pd.DataFrame:
    """The terms of a fitted model of this package: every pipeline's selected columns and weights.

    Args:
        model: a fitted pipeline or fusion estimator (`dlradiomics.models.build_estimator`).

    Returns:
        One row per column a classifier reads (`TERM_COLUMNS`); empty for a model of another shape.
    """
    frames = []
    for block, pipeline in block_pipelines(model).items():
        try:
            frames.append(pipeline_terms(pipeline, block))
        except (AttributeError, ValueError, TypeError):
            # A step of the user's own without get_feature_names_out: its terms cannot be named.
            continue
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=TERM_COLUMNS)
    terms = pd.concat(frames, ignore_index=True)
    if hasattr(model, "reducers_"):  # DLR: every column its classifiers read is a PCA component
        terms["derived"] = True
    return terms

"""Fit time of the models room at BUS-BRA scale (1,875 images of 1,064 patients), on generated features.

One fit of each classifier on 102 radiomic-like columns with the default selection
(Mann-Whitney -> Spearman -> LASSO) and on 2,048 deep-like columns with PCA to 32, plus one fit
of each fusion on a two-block table. The features are synthetic (a few informative columns,
correlated groups) so that the bench runs without the feature extraction; real tables are
similar in shape. Run: ``nice .venv/bin/python bench/models_fit_time.py``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from dlradiomics.models import CLASSIFIERS, DLRFusion, EarlyFusion, StackingFusion, WeightedEnsembleFusion, make_pipeline


def synthetic_table(n_patients: int = 1064, n_images: int = 1875, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    patient_of_image = np.sort(np.concatenate([np.arange(n_patients), rng.integers(0, n_patients, n_images - n_patients)]))
    patient_label = (rng.random(n_patients) < 0.32).astype(int)
    labels = patient_label[patient_of_image]
    blocks = {}
    for block, width, shared in (("US.radiomic", 102, 10), ("US.deep", 2048, 64)):
        latent = rng.normal(size=(n_images, shared)) + 0.8 * labels[:, None] * (np.arange(shared) < 3)
        mixing = rng.normal(size=(shared, width)) / np.sqrt(shared)
        values = latent @ mixing + 0.5 * rng.normal(size=(n_images, width))
        blocks.update({f"{block}__f{i:04d}": values[:, i] for i in range(width)})
    index = pd.Index([f"bus_{p:04d}" for p in patient_of_image], name="patient_id")
    return pd.DataFrame(blocks, index=index), labels


def timed(label: str, estimator, X: pd.DataFrame, y: np.ndarray) -> None:
    start = time.perf_counter()
    estimator.fit(X, y)
    print(f"{label:<48} {time.perf_counter() - start:7.2f} s")


def main() -> None:
    warnings.simplefilter("ignore")
    X, y = synthetic_table()
    radiomic = X.filter(like="US.radiomic__")
    deep = X.filter(like="US.deep__")
    print(f"table: {X.shape[0]} images, {X.index.nunique()} patients, {radiomic.shape[1]} radiomic + {deep.shape[1]} deep columns")
    for name in CLASSIFIERS:
        timed(f"radiomic, default selection, {name}", make_pipeline(name), radiomic, y)
    for name in CLASSIFIERS:
        timed(f"deep, pca:32, {name}", make_pipeline(name, ["pca:32"]), deep, y)
    both = pd.concat([radiomic, deep.iloc[:, :256]], axis=1)
    timed("EarlyFusion logistic (102 + 256 columns)", EarlyFusion(), both, y)
    timed("WeightedEnsembleFusion logistic, inner_cv=3", WeightedEnsembleFusion(inner_cv=3), both, y)
    timed("StackingFusion logistic, inner_cv=3", StackingFusion(inner_cv=3), both, y)
    timed("DLRFusion early, 108 components, logistic", DLRFusion("early"), X, y)


if __name__ == "__main__":
    main()

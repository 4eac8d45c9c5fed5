"""Small generated modelling tables and the fitted pipeline the bundle tests save."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def patient_table(n_patients: int = 30, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Four US radiomic columns shifted by the label, one row per patient."""
    rng = np.random.default_rng(seed)
    index = pd.Index([f"p{number:03d}" for number in range(n_patients)], name="patient_id")
    labels = pd.Series(np.arange(n_patients) % 2, index=index, name="label")
    features = rng.normal(size=(n_patients, 4)) + labels.to_numpy()[:, None]
    return pd.DataFrame(features, index=index, columns=[f"US.radiomic__f{column}" for column in range(4)]), labels


def fitted_pipeline(table: pd.DataFrame, labels: pd.Series):
    """Impute, scale, logistic regression: a genuine model of the kinds bundles hold."""
    return make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()).fit(table, labels)

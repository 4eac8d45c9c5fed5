"""DLR fusion on a cohort smaller than the PCA asked for scores like radiomics alone, not at chance.

Issue 10: with ~46 training patients per fold and 108 components asked for, the old PCA kept a
last component of variance ~1e-29; the classifier's scaler multiplied it by ~1e15 and DLR early
fusion fell to chance (69 BUS-BRA patients: radiomic 0.855, DLR 0.556). The generated cohort
below has the same shape (69 patients, 3 folds, 100 radiomic + 1280 deep columns, a few latent
factors carrying the label); with the old PCA its DLR early fusion scored 0.554, 0.500 and 0.543
on seeds 0-2 (measured on the code before the fix). The real 69-patient case is measured by ``bench/dlr_small_cohort.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from dlradiomics.models import DLRFusion, PatientGroupKFold, make_pipeline


def small_cohort(seed: int, n_patients: int = 69, n_radiomic: int = 100, n_deep: int = 1280) -> tuple[pd.DataFrame, np.ndarray]:
    """One image per patient; radiomic and deep features are noisy views of 6 latent factors, 3 shifted by the label."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n_patients) < n_patients // 3).astype(int)
    latent = rng.normal(size=(n_patients, 6)) + 1.2 * labels[:, None] * np.array([1.0, 1.0, 0.5, 0, 0, 0])
    radiomic = latent @ rng.normal(size=(6, n_radiomic)) + rng.normal(size=(n_patients, n_radiomic))
    deep = latent @ rng.normal(size=(6, n_deep)) + 2.0 * rng.normal(size=(n_patients, n_deep))
    columns = [f"US.radiomic__r{i}" for i in range(n_radiomic)] + [f"US.deep__d{i}" for i in range(n_deep)]
    index = pd.Index([f"P{i:03d}" for i in range(n_patients)], name="patient_id")
    return pd.DataFrame(np.hstack([radiomic, deep]), index=index, columns=columns), labels


def out_of_fold(model, X: pd.DataFrame, y: np.ndarray) -> tuple[float, list]:
    """Out-of-fold AUC over 3 patient-grouped folds, and the fitted (model, test rows) of each fold."""
    proba = np.empty(len(y))
    fitted = []
    for train, test in PatientGroupKFold(3, random_state=0).split(X, y):
        fold_model = clone(model).fit(X.iloc[train], y[train])
        proba[test] = fold_model.predict_proba(X.iloc[test])[:, 1]
        fitted.append((fold_model, X.iloc[test]))
    return roc_auc_score(y, proba), fitted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dlr_early_fusion_on_69_patients_is_within_a_few_points_of_radiomic_alone(seed):
    X, y = small_cohort(seed)
    radiomic_columns = [column for column in X if column.startswith("US.radiomic__")]
    radiomic_auc, _ = out_of_fold(make_pipeline("logistic"), X[radiomic_columns], y)
    dlr_auc, folds = out_of_fold(DLRFusion("early", classifier="logistic"), X, y)

    assert radiomic_auc > 0.75
    assert dlr_auc >= radiomic_auc - 0.08
    for fitted, test in folds:
        # 46 training patients: the fused components are no more than their rank (45) ...
        assert sum(reducer[-1].n_components_ for _, _, reducer in fitted.reducers_.values()) <= 45
        # ... so what reaches the classifier stays on the training rows' scale (sd 1 after scaling)
        scaled = fitted.fusion_.pipeline_[:-1].transform(fitted.transform_blocks(test))
        assert np.abs(scaled.to_numpy()).max() < 20

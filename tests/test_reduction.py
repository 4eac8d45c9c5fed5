"""BoundedPCA on folds smaller than the components asked for, checked against the SVD's definition."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.models import BoundedPCA


def test_components_are_capped_by_the_rank_of_the_centred_fold():
    rng = np.random.default_rng(0)
    small_fold = rng.normal(size=(12, 40))
    pca = BoundedPCA(n_components=108).fit(small_fold)
    # 12 centred rows span at most 11 directions (numpy's own rank of the centred matrix says so)
    assert np.linalg.matrix_rank(small_fold - small_fold.mean(axis=0)) == 11
    assert pca.rank_cap_ == 11
    assert pca.n_components_ == 11
    assert pca.transform(rng.normal(size=(3, 40))).shape == (3, 11)
    assert list(pca.get_feature_names_out())[:2] == ["pca0", "pca1"]


def test_a_fold_with_fewer_rows_than_components_feeds_no_noise_component_to_a_scaler():
    # 47 training rows, 108 components asked for: the old cap (min(n_rows, n_columns) = 47) kept a
    # 47th component of variance ~1e-29, which the scaler then multiplied by ~1e15.
    rng = np.random.default_rng(1)
    train = rng.normal(size=(47, 300))
    test = rng.normal(size=(20, 300))
    model = make_pipeline(BoundedPCA(n_components=108), StandardScaler()).fit(train)
    pca = model[0]
    assert pca.n_components_ == 46
    variances = pca.pca_.explained_variance_
    assert variances.min() > 1e-3 * variances.max()
    # test rows stay on the scale of the training rows (standardised training components have sd 1)
    assert np.abs(model.transform(test)).max() < 10


def test_variance_floor_drops_components_of_near_duplicate_columns():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(200, 5))
    # columns 5-9 repeat columns 0-4 up to float32 rounding: 5 real directions, 5 of rounding noise
    X = np.hstack([base, base.astype(np.float32).astype(np.float64)])
    singular_values = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    variance_ratio = singular_values**2 / singular_values[0] ** 2
    assert (variance_ratio[5:] < 1e-12).all() and (variance_ratio[:5] > 1e-2).all()

    floored = BoundedPCA(n_components=10).fit(X)
    assert floored.rank_cap_ == 10
    assert floored.n_components_ == 5
    assert floored.n_below_variance_floor_ == 5
    unfloored = BoundedPCA(n_components=10, min_variance_ratio=0.0).fit(X)
    assert unfloored.n_components_ == 10


def test_kept_components_are_the_leading_right_singular_vectors():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 8)) @ rng.normal(size=(8, 8))
    pca = BoundedPCA(n_components=4).fit(X)
    _, _, vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(np.abs(pca.pca_.components_), np.abs(vt[:4]), atol=1e-8)


def test_bad_requests_are_clear_errors():
    X = np.random.default_rng(4).normal(size=(10, 3))
    with pytest.raises(ValueError, match="n_components must be at least 1"):
        BoundedPCA(n_components=0).fit(X)
    with pytest.raises(ValueError, match="min_variance_ratio"):
        BoundedPCA(min_variance_ratio=1.0).fit(X)
    with pytest.raises(ValueError, match="at least 2 samples"):
        BoundedPCA().fit(X[:1])

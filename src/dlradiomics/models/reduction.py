"""PCA whose number of components holds at any training-fold size."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted, validate_data

DEFAULT_MIN_VARIANCE_RATIO = 1e-6


class BoundedPCA(TransformerMixin, BaseEstimator):
    """scikit-learn's PCA keeping at most ``n_components``, never more than the training data support.

    A fixed number of components (32 per modality for deep features, 51 + 57 for DLR fusion in
    the paper) can exceed what a small training fold holds. Two caps apply, both computed on the
    rows ``fit`` sees (never on test rows):

    1. **Rank.** Centred data of ``n`` rows and ``p`` columns has rank at most
       ``min(n - 1, p)``; the components beyond it are numerical noise (variance ~1e-29 on 47
       rows), which a following scaler would blow up by ~1e15. PCA is fitted with at most that
       many components.
    2. **Variance floor.** Of those, a component is kept only if its explained variance is at
       least ``min_variance_ratio`` times the first component's (default 1e-6: a component
       whose standard deviation is under 0.1% of the first's carries no structure a scaler
       should amplify; rounding noise of float32 features sits near 1e-14). Near-duplicate
       columns and exact collinearity are caught here. PCA is then refitted with the kept
       number, so every fitted attribute describes the kept components only. At least one
       component is always kept.

    Args:
        n_components: components wanted.
        min_variance_ratio: smallest explained variance, as a fraction of the first component's,
            of a kept component (0 keeps every component within the rank).
        random_state: seed of the randomised SVD solver.

    Attributes:
        pca_: the fitted ``sklearn.decomposition.PCA`` with the kept components.
        n_components_: components kept.
        rank_cap_: ``min(n_components, n_samples - 1, n_features)`` of the fit data.
        n_below_variance_floor_: components within the rank cap dropped by the variance floor.
    """

    def __init__(
        self,
        n_components: int = 32,
        min_variance_ratio: float = DEFAULT_MIN_VARIANCE_RATIO,
        random_state: int | None = 0,
    ):
        self.n_components = n_components
        self.min_variance_ratio = min_variance_ratio
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit PCA on the training rows, capped by their rank and by the variance floor.

        Args:
            X: training features without NaN (impute first).
            y: ignored.

        Returns:
            self

        Raises:
            ValueError: for fewer than 2 rows (no direction of variance exists), or bad parameters.
        """
        X = validate_data(self, X)
        if self.n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {self.n_components}")
        if not 0 <= self.min_variance_ratio < 1:
            raise ValueError(f"min_variance_ratio must be in [0, 1), got {self.min_variance_ratio}")
        n_samples, n_features = X.shape
        if n_samples < 2:
            raise ValueError(f"BoundedPCA needs at least 2 samples to find a component, got {n_samples} sample")
        self.rank_cap_ = int(min(self.n_components, n_samples - 1, n_features))
        pca = PCA(n_components=self.rank_cap_, random_state=self.random_state).fit(X)
        variance = pca.explained_variance_
        above_floor = variance >= self.min_variance_ratio * variance[0]
        # components come sorted by variance, so the kept ones are a prefix
        kept = max(1, int(np.count_nonzero(above_floor)))
        if kept < self.rank_cap_:
            pca = PCA(n_components=kept, random_state=self.random_state).fit(X)
        self.pca_ = pca
        self.n_components_ = int(pca.n_components_)
        self.n_below_variance_floor_ = self.rank_cap_ - kept
        return self

    def transform(self, X):
        """Project rows onto the kept components."""
        check_is_fitted(self, "pca_")
        X = validate_data(self, X, reset=False)
        return self.pca_.transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names ``pca0``, ``pca1``, ... of the kept components."""
        check_is_fitted(self, "pca_")
        return self.pca_.get_feature_names_out()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # PCA keeps float32 as float32 (the deep embeddings are float32)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

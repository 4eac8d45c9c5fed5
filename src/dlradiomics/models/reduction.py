"""PCA whose number of components is capped by the training fold's size."""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted, validate_data


class BoundedPCA(TransformerMixin, BaseEstimator):
    """scikit-learn's PCA with ``n_components`` capped at ``min(n_samples, n_features)`` of the fit data.

    A fixed number of components (32 per modality for deep features, 108 for DLR fusion in the
    paper) can exceed what a small training fold supports; plain PCA then fails. The cap is
    taken on the data ``fit`` sees, so it never depends on test rows.

    Args:
        n_components: components wanted.
        random_state: seed of the randomised SVD solver.

    Attributes:
        pca_: the fitted ``sklearn.decomposition.PCA``.
        n_components_: components actually kept.
    """

    def __init__(self, n_components: int = 32, random_state: int | None = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit PCA on the training rows.

        Args:
            X: training features without NaN (impute first).
            y: ignored.

        Returns:
            self
        """
        X = validate_data(self, X)
        if self.n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {self.n_components}")
        components = int(min(self.n_components, X.shape[0], X.shape[1]))
        self.pca_ = PCA(n_components=components, random_state=self.random_state).fit(X)
        self.n_components_ = self.pca_.n_components_
        return self

    def transform(self, X):
        """Project rows onto the fitted components."""
        check_is_fitted(self, "pca_")
        X = validate_data(self, X, reset=False)
        return self.pca_.transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names ``pca0``, ``pca1``, ... of the kept components."""
        check_is_fitted(self, "pca_")
        return self.pca_.get_feature_names_out()

"""Deep features for the radiomics models: embeddings reduced by PCA inside the training folds.

The paper compresses each modality's 2048 ResNet-50 features to 32 principal components. Fitted on
all patients, PCA would see the test patients; as a step of a scikit-learn ``Pipeline`` it is
refitted on the training part of every fold. Nothing in this package fits PCA on a whole cohort.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

PAPER_DEEP_COMPONENTS = 32


class RankCappedPCA(TransformerMixin, BaseEstimator):
    """scikit-learn's PCA keeping at most ``n_components``, and never more than its training rows support.

    Centred data of ``n`` rows has rank at most ``n - 1``, and scikit-learn's PCA refuses more
    components than ``min(n_rows, n_columns)``: the paper's 32 would fail on a training fold of
    32 rows or fewer. So fit keeps ``min(n_components, n_rows - 1, n_columns)`` components of the
    rows it sees (``n_components_`` says how many); a smaller fold gives fewer columns, never an
    error. (The fusion models use ``dlradiomics.models.reduction.BoundedPCA``, which adds a
    variance floor; this package's features do not import models.)

    Args:
        n_components: components wanted.
        random_state: seed of PCA's randomised solver.

    Attributes:
        pca_: the fitted ``sklearn.decomposition.PCA``.
        n_components_: components kept.
    """

    def __init__(self, n_components: int = PAPER_DEEP_COMPONENTS, random_state: int | None = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit PCA on the training rows with at most ``n_rows - 1`` components.

        Raises:
            ValueError: fewer than 2 rows (no direction of variance exists), or ``n_components < 1``.
        """
        X = validate_data(self, X)
        if self.n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {self.n_components}")
        if X.shape[0] < 2:
            raise ValueError(f"PCA needs at least 2 samples (training rows), got {X.shape[0]} sample")
        kept = int(min(self.n_components, X.shape[0] - 1, X.shape[1]))
        self.pca_ = PCA(n_components=kept, random_state=self.random_state).fit(X)
        self.n_components_ = kept
        return self

    def transform(self, X):
        """Project rows onto the kept components."""
        check_is_fitted(self, "pca_")
        return self.pca_.transform(validate_data(self, X, reset=False))

    def get_feature_names_out(self, input_features=None):
        """Names ``pca0``, ``pca1``, ... of the kept components."""
        check_is_fitted(self, "pca_")
        return self.pca_.get_feature_names_out()


def deep_feature_pipeline(n_components: int = PAPER_DEEP_COMPONENTS, *, standardize: bool = True,
                          random_state: int = 0) -> Pipeline:
    """An unfitted transformer: (optional) standardisation then PCA, to put before a classifier.

    Args:
        n_components: principal components kept (paper: 32); at most ``n_rows - 1`` of the
            training rows (:class:`RankCappedPCA`).
        standardize: scale each embedding dimension to unit variance first, so that a few
            high-variance channels do not decide the components alone.
        random_state: seed of PCA's randomised solver (used for large matrices).

    Returns:
        ``Pipeline([("scale", StandardScaler()), ("pca", RankCappedPCA(n_components))])`` (no scaling step
        when ``standardize`` is False); use it as the first steps of a model's pipeline.
    """
    steps = [("scale", StandardScaler())] if standardize else []
    steps.append(("pca", RankCappedPCA(n_components=n_components, random_state=random_state)))
    return Pipeline(steps)

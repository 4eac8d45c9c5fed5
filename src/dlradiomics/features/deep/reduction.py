"""Deep features for the radiomics models: embeddings reduced by PCA inside the training folds.

The paper compresses each modality's 2048 ResNet-50 features to 32 principal components. Fitted on
all patients, PCA would see the test patients; as a step of a scikit-learn ``Pipeline`` it is
refitted on the training part of every fold. Nothing in this package fits PCA on a whole cohort.
"""

from __future__ import annotations

from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

PAPER_DEEP_COMPONENTS = 32


def deep_feature_pipeline(n_components: int = PAPER_DEEP_COMPONENTS, *, standardize: bool = True,
                          random_state: int = 0) -> Pipeline:
    """An unfitted transformer: (optional) standardisation then PCA, to put before a classifier.

    Args:
        n_components: principal components kept (paper: 32).
        standardize: scale each embedding dimension to unit variance first, so that a few
            high-variance channels do not decide the components alone.
        random_state: seed of PCA's randomised solver (used for large matrices).

    Returns:
        ``Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components))])`` (no scaling step
        when ``standardize`` is False); use it as the first steps of a model's pipeline.
    """
    steps = [("scale", StandardScaler())] if standardize else []
    steps.append(("pca", PCA(n_components=n_components, random_state=random_state)))
    return Pipeline(steps)

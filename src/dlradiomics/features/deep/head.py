"""The paper's transfer learning, trained where it is cheap: a new fully connected head on embeddings.

The paper freezes ResNet-50's convolutional layers and trains a new two-class fully connected layer
with SGD (learning rate 0.001, batch 32, 200 epochs). With the trunk frozen and in eval mode (batch
norm uses its running statistics) and no augmentation, the trunk's output for an image is the same
in every epoch, so training the head on cached embeddings gives the same model as training through
the network, at a small fraction of the cost. ``tests/test_deep_head.py`` checks this equality.

Reproducibility conventions (shared with :func:`train_head_through_backbone`):

- the head is ``torch.nn.Linear(n_features, n_classes)`` initialised after ``torch.manual_seed(seed)``
  (in a forked random state, so the caller's state is untouched);
- the batch order of each epoch is ``torch.randperm(n_samples, generator=g)`` with
  ``g = torch.Generator().manual_seed(seed)``, drawn once per epoch;
- the loss is the mean cross-entropy of the batch; each step is ``torch.optim.SGD``'s, taken through its
  functional form ``torch.optim.sgd.sgd`` (see ``_sgd_train``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.optim.sgd import sgd

from dlradiomics.features.deep.threads import single_torch_thread


def seeded_linear_head(n_features: int, n_classes: int, seed: int) -> nn.Linear:
    """A new fully connected layer with PyTorch's default initialisation, drawn from ``seed``.

    Args:
        n_features: embedding length.
        n_classes: number of outputs.
        seed: seed of the initialisation.

    Returns:
        The freshly initialised layer.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Linear(n_features, n_classes)


def _sgd_train(head: nn.Linear, features_of: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor,
               *, epochs: int, batch_size: int, learning_rate: float, momentum: float,
               weight_decay: float, seed: int) -> nn.Linear:
    # torch.optim.SGD's step through its functional form, with the momentum buffers kept here as
    # SGD keeps them in its state: the same update, without the optimiser class, whose constructor
    # imports torch._dynamo (1.5 CPU-s, most of the demo's Grad-CAM-head stage). The tests train
    # with torch.optim.SGD itself and demand the same weights.
    parameters = list(head.parameters())
    momentum_buffers: list[torch.Tensor | None] = [None] * len(parameters)
    loss_function = nn.CrossEntropyLoss()
    order_generator = torch.Generator().manual_seed(seed)
    n_samples = targets.shape[0]
    head.train()
    for _ in range(epochs):
        order = torch.randperm(n_samples, generator=order_generator)
        for start in range(0, n_samples, batch_size):
            batch_indices = order[start:start + batch_size]
            head.zero_grad(set_to_none=True)
            loss = loss_function(head(features_of(batch_indices)), targets[batch_indices])
            loss.backward()
            with torch.no_grad():
                sgd(parameters, [parameter.grad for parameter in parameters], momentum_buffers,
                    weight_decay=weight_decay, momentum=momentum, lr=learning_rate, dampening=0.0,
                    nesterov=False, maximize=False)
    head.eval()
    return head


class EmbeddingHeadClassifier(ClassifierMixin, BaseEstimator):
    """The paper's new fully connected head on frozen-backbone embeddings, as a scikit-learn classifier.

    Args:
        epochs: passes over the training set (paper: 200).
        learning_rate: SGD step size (paper: 0.001).
        batch_size: samples per step (paper: 32).
        momentum: SGD momentum. 0.9 as in PyTorch's transfer-learning tutorial, whose SGD settings
            (lr 0.001) the paper's match; the paper does not state it.
        weight_decay: L2 penalty of SGD.
        seed: seed of the initialisation and of the batch order.

    Attributes:
        classes_: the class labels, sorted.
        coef_: head weights ``(n_classes, n_features)``.
        intercept_: head biases ``(n_classes,)``.
        n_features_in_: embedding length seen in ``fit``.
    """

    def __init__(self, epochs: int = 200, learning_rate: float = 0.001, batch_size: int = 32,
                 momentum: float = 0.9, weight_decay: float = 0.0, seed: int = 0):
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.seed = seed

    def fit(self, X, y):
        """Train a new head on embeddings.

        Args:
            X: embeddings ``(n_samples, n_features)``.
            y: class labels (at least two classes).

        Returns:
            self
        """
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError(f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1 "
                             f"and learning_rate ({self.learning_rate}) > 0")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"the head needs at least two classes in y, got one class: {self.classes_.tolist()}")
        features = torch.from_numpy(np.ascontiguousarray(X))
        head = seeded_linear_head(X.shape[1], len(self.classes_), self.seed)
        with single_torch_thread():
            _sgd_train(head, lambda indices: features[indices], torch.from_numpy(encoded.astype(np.int64)),
                       epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                       momentum=self.momentum, weight_decay=self.weight_decay, seed=self.seed)
        self.coef_ = head.weight.detach().numpy().copy()
        self.intercept_ = head.bias.detach().numpy().copy()
        return self

    def decision_function(self, X) -> np.ndarray:
        """Logits of the head, ``(n_samples, n_classes)`` (a single column of log-odds for two classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        logits = X @ self.coef_.T + self.intercept_
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the logits, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        logits = torch.from_numpy(X @ self.coef_.T + self.intercept_)
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def to_torch_head(self) -> nn.Linear:
        """The fitted head as a ``torch.nn.Linear``, to stack on the backbone (e.g. for Grad-CAM)."""
        check_is_fitted(self)
        head = nn.Linear(self.coef_.shape[1], self.coef_.shape[0])
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(self.coef_))
            head.bias.copy_(torch.from_numpy(self.intercept_))
        return head.eval()


# The name docs/architecture.md uses for the same estimator.
FrozenBackboneHead = EmbeddingHeadClassifier


def train_head_through_backbone(backbone_model: nn.Module, images: torch.Tensor, labels: np.ndarray, *,
                                epochs: int = 200, learning_rate: float = 0.001, batch_size: int = 32,
                                momentum: float = 0.9, weight_decay: float = 0.0, seed: int = 0) -> nn.Linear:
    """The paper's way: every batch of images runs through the frozen backbone in every epoch.

    Kept for benchmarking and checking; :class:`EmbeddingHeadClassifier` gives the same head far
    faster. Labels must already be encoded 0..n_classes-1.

    Args:
        backbone_model: frozen trunk mapping ``(N, 3, S, S)`` to ``(N, D)``; used in eval mode.
        images: preprocessed inputs ``(n_samples, 3, S, S)``.
        labels: integer class indices.
        epochs: as for :class:`EmbeddingHeadClassifier`.
        learning_rate: as for :class:`EmbeddingHeadClassifier`.
        batch_size: as for :class:`EmbeddingHeadClassifier`.
        momentum: as for :class:`EmbeddingHeadClassifier`.
        weight_decay: as for :class:`EmbeddingHeadClassifier`.
        seed: as for :class:`EmbeddingHeadClassifier`.

    Returns:
        The trained head.
    """
    backbone_model.eval()
    targets = torch.from_numpy(np.array(labels, dtype=np.int64))
    n_classes = int(targets.max()) + 1
    with torch.no_grad():
        embedding_dim = backbone_model(images[:1]).shape[1]
    head = seeded_linear_head(embedding_dim, n_classes, seed)

    def features_of(indices: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return backbone_model(images[indices])

    return _sgd_train(head, features_of, targets, epochs=epochs, batch_size=batch_size,
                      learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay, seed=seed)

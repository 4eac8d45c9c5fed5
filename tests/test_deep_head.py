"""The transfer-learned head: a scikit-learn classifier, and the same model as training through the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlradiomics.features.deep.backbones import create_backbone
from dlradiomics.features.deep.head import EmbeddingHeadClassifier, train_head_through_backbone
from deep_fixtures import single_torch_thread  # noqa: E402,F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _separable(n_samples=80, n_features=6, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_samples)
    X = rng.normal(size=(n_samples, n_features)) + 2.0 * y[:, None]
    return X.astype(np.float32), y


def test_head_learns_a_separable_problem_and_follows_the_classifier_contract():
    X, y = _separable()
    labels = np.where(y == 1, "malignant", "benign")
    model = EmbeddingHeadClassifier(epochs=50, learning_rate=0.01)
    assert model.fit(X, labels) is model
    assert list(model.classes_) == ["benign", "malignant"]
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (80, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert (model.predict(X) == labels).mean() > 0.9
    assert model.coef_.shape == (2, 6) and model.n_features_in_ == 6


def test_head_runs_inside_a_pipeline_in_cross_val_predict():
    X, y = _separable(seed=1)
    pipeline = make_pipeline(StandardScaler(), EmbeddingHeadClassifier(epochs=20, learning_rate=0.01))
    out_of_fold = cross_val_predict(pipeline, X, y, cv=StratifiedKFold(4), method="predict_proba")
    assert out_of_fold.shape == (80, 2)
    assert ((out_of_fold[:, 1] > 0.5) == y).mean() > 0.85


def test_same_seed_same_head_and_another_seed_another_head():
    X, y = _separable()
    first = EmbeddingHeadClassifier(epochs=5, seed=1).fit(X, y)
    again = EmbeddingHeadClassifier(epochs=5, seed=1).fit(X, y)
    other = EmbeddingHeadClassifier(epochs=5, seed=2).fit(X, y)
    np.testing.assert_array_equal(first.coef_, again.coef_)
    assert not np.allclose(first.coef_, other.coef_)


def test_fit_does_not_disturb_the_callers_random_state():
    X, y = _separable()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    EmbeddingHeadClassifier(epochs=2).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_a_single_class_is_refused():
    X, _ = _separable(n_samples=10)
    with pytest.raises(ValueError, match="two classes"):
        EmbeddingHeadClassifier(epochs=1).fit(X, np.zeros(10, dtype=int))


def test_wrong_number_of_features_at_predict_is_refused():
    X, y = _separable()
    model = EmbeddingHeadClassifier(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict_proba(X[:, :3])


def _tiny_image_set(n_images=10, side=64, seed=0):
    # The trunk ends in global average pooling, so small inputs keep the test fast; the claim
    # (same head either way) does not depend on the input size.
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.normal(size=(n_images, 3, side, side)).astype(np.float32))
    labels = np.array([0, 1] * (n_images // 2))
    return images, labels


def _train_with_torch_sgd(network, parameters, inputs, targets, *, epochs, batch_size, learning_rate, momentum,
                          seed, weight_decay=0.0):
    """The reference loop, written independently of the package: torch.optim.SGD on the mean cross-entropy,
    the batch order drawn once per epoch from a generator seeded with ``seed``."""
    optimizer = torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum, weight_decay=weight_decay)
    order_generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(targets), generator=order_generator)
        for start in range(0, len(targets), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(network(inputs[batch]), targets[batch]).backward()
            optimizer.step()


def test_head_on_cached_embeddings_equals_training_through_the_frozen_network():
    """The paper trains the new layer with images through the frozen trunk; we train on embeddings.

    This test writes the paper's loop independently (module stack, eval-mode batch norm, same seed
    for the initial layer and the batch order, no augmentation) and demands the same weights.
    """
    backbone = create_backbone("efficientnet_lite0", "imagenet")
    images, labels = _tiny_image_set()
    epochs, batch_size, learning_rate, momentum, seed = 3, 4, 0.01, 0.9, 5

    torch.manual_seed(seed)
    network = torch.nn.Sequential(backbone.model, torch.nn.Linear(backbone.embedding_dim, 2))
    network.eval()  # frozen trunk: batch norm uses running statistics, dropout is off
    _train_with_torch_sgd(network, network[1].parameters(), images, torch.from_numpy(labels), epochs=epochs,
                          batch_size=batch_size, learning_rate=learning_rate, momentum=momentum, seed=seed)

    with torch.inference_mode():
        embeddings = backbone.model(images).numpy()
    head = EmbeddingHeadClassifier(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                   momentum=momentum, seed=seed).fit(embeddings, labels)
    np.testing.assert_allclose(head.coef_, network[1].weight.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(head.intercept_, network[1].bias.detach().numpy(), atol=1e-5)

    library_head = train_head_through_backbone(backbone.model, images, labels, epochs=epochs,
                                               batch_size=batch_size, learning_rate=learning_rate,
                                               momentum=momentum, seed=seed)
    np.testing.assert_allclose(library_head.weight.detach().numpy(), head.coef_, atol=1e-5)


def test_head_takes_the_steps_of_torch_optim_sgd_with_momentum_and_weight_decay():
    """The head's steps go through SGD's functional form; torch.optim.SGD itself must give the same weights."""
    X, y = _separable(n_samples=37, seed=3)
    epochs, batch_size, learning_rate, momentum, weight_decay, seed = 4, 8, 0.05, 0.9, 0.01, 2
    torch.manual_seed(seed)
    reference = torch.nn.Linear(X.shape[1], 2)
    _train_with_torch_sgd(reference, reference.parameters(), torch.from_numpy(X), torch.from_numpy(y.astype(np.int64)),
                          epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, momentum=momentum,
                          weight_decay=weight_decay, seed=seed)

    head = EmbeddingHeadClassifier(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                   momentum=momentum, weight_decay=weight_decay, seed=seed).fit(X, y)
    np.testing.assert_allclose(head.coef_, reference.weight.detach().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(head.intercept_, reference.bias.detach().numpy(), rtol=0, atol=1e-6)
    # momentum and weight decay both act: without them the weights differ
    plain = EmbeddingHeadClassifier(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                    momentum=0.0, seed=seed).fit(X, y)
    assert np.abs(plain.coef_ - head.coef_).max() > 1e-3


def test_training_a_head_does_not_import_torch_dynamo():
    """torch.optim.SGD's constructor imports torch._dynamo (seconds of CPU); the head's training must not."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from dlradiomics.features.deep.head import EmbeddingHeadClassifier\n"
            "X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)\n"
            "EmbeddingHeadClassifier(epochs=2).fit(X, np.arange(20) % 2)\n"
            "print('torch._dynamo' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_torch_head_reproduces_predict_proba():
    X, y = _separable()
    model = EmbeddingHeadClassifier(epochs=5).fit(X, y)
    with torch.no_grad():
        probabilities = torch.softmax(model.to_torch_head()(torch.from_numpy(X)), dim=1).numpy()
    np.testing.assert_allclose(probabilities, model.predict_proba(X), atol=1e-5)


def test_head_passes_scikit_learns_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    check_estimator(EmbeddingHeadClassifier(epochs=20, learning_rate=0.01))


def test_small_torch_work_runs_on_one_thread_and_restores_the_count():
    import torch

    from dlradiomics.features.deep.threads import single_torch_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError), single_torch_thread():
            assert torch.get_num_threads() == 1
            raise RuntimeError("the count is restored after an error too")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

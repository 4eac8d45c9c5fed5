"""CNNs trained inside the training folds: the paper's CNN baselines, and fine-tuned deep features.

Both estimators take an ROI table (one row per image: ``image``, ``mask``, optional
``mask_label``, ``slice``, ``roi_id``; the patient in a ``patient_id`` column or, as
:func:`dlradiomics.evaluation.crossval.cross_validate_patients` passes it, in the index) and train
a network on the rows they are fitted on, nothing else:

- :class:`CnnClassifier` is a classifier: its ``predict_proba`` is the network's own softmax,
  the paper's VGG19 / GoogLeNet / ResNet-101 / Inception-v3 baselines (and ResNet-50,
  EfficientNet-Lite0) trained end to end or only in their last blocks.
- :class:`FineTunedEmbeddings` is a transformer: it fine-tunes the same way, then returns the
  fine-tuned network's global-average-pool embeddings, the deep source of a radiomics pipeline
  (``Pipeline([FineTunedEmbeddings(), StandardScaler(), PCA(32), classifier])``).

The validation rows that decide early stopping are a patient-grouped, label-stratified part of
the rows given to ``fit``: inside cross-validation, training patients only. A cloned estimator
fitted on an outer fold's training rows therefore never sees a test patient's label; its network
never saw a test patient's image in training.

Cost on a CPU comes from running the network. With ``trainable="last_blocks"`` (the default) the
frozen front runs once per ROI and view, ever (cached in ``store_dir``); each fit then trains only
the last blocks on those cached activations. ``trainable="all"`` runs the whole network on every
batch of every epoch (a GPU's job). A fitted network is memoised in ``store_dir`` under the content
of its training rows, labels and settings, so the same fit asked again (another classifier on the
same fold, a rerun of the study) is read back, not retrained.
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from dlradiomics.features.deep.activations import RoiArrays, front_activations, normalise_crops, roi_crops
from dlradiomics.features.deep.backbones import Backbone, create_backbone
from dlradiomics.features.deep.embeddings import default_device, deep_column_names
from dlradiomics.features.deep.gradcam import GradCamResult, grad_cam_roi
from dlradiomics.features.deep.preprocessing import DEFAULT_MARGIN, CropSettings
from dlradiomics.features.deep.stages import backbone_blocks, split_backbone
from dlradiomics.features.deep.training import (
    TrainingSettings,
    end_to_end_augmentation,
    new_head,
    train_back_and_head,
)
from dlradiomics.store import FeatureStore, content_key

logger = logging.getLogger(__name__)

TRAINABLE = ("head", "last_blocks", "all")
ROI_COLUMNS = ("image", "mask")
# Bump when training changes in a way the estimator's parameters do not capture (memoised fits).
TRAINING_CODE_VERSION = 1


@contextmanager
def _torch_threads(n_threads: int | None):
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def roi_rows(X) -> pd.DataFrame:
    """The ROI table an estimator of this module reads, with a ``patient_id`` column.

    Args:
        X: DataFrame with ``image`` and ``mask`` columns (paths); the patient in ``patient_id`` or
            the index.

    Raises:
        TypeError: ``X`` is not a DataFrame.
        ValueError: a required column is missing.
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"a CNN estimator reads an ROI table (a DataFrame with columns {list(ROI_COLUMNS)}), "
                        f"got {type(X).__name__}")
    missing = [column for column in ROI_COLUMNS if column not in X.columns]
    if missing:
        raise ValueError(f"the ROI table lacks column(s) {missing}; it needs one row per image with its "
                         f"{' and '.join(ROI_COLUMNS)} paths")
    rows = X.reset_index(drop="patient_id" in X.columns)
    if "patient_id" not in rows.columns:
        rows = rows.rename(columns={rows.columns[0]: "patient_id"})
    rows["patient_id"] = rows["patient_id"].astype(str)
    return rows


def validation_split(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A patient-grouped, label-stratified validation mask over the rows (all False when too few patients).

    Too few: a class with fewer patients than ``round(1 / fraction)`` splits.

    Args:
        labels: class of each row.
        groups: patient of each row.
        fraction: share of patients to hold out (``1 / n_splits`` of a stratified group k-fold).
        seed: shuffle seed.

    Returns:
        Boolean mask of the validation rows.
    """
    mask = np.zeros(len(labels), dtype=bool)
    if fraction <= 0:
        return mask
    n_splits = max(2, int(round(1.0 / fraction)))
    patients_per_class = pd.Series(groups).groupby(labels).nunique()
    # Stratifying needs every class in every split: fewer patients of a class than splits means
    # the set is too small to spare a validation part, and training runs all its epochs instead.
    if len(patients_per_class) < 2 or patients_per_class.min() < n_splits:
        return mask
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, held_out = next(splitter.split(np.zeros(len(labels)), labels, groups))
    mask[held_out] = True
    return mask


@dataclasses.dataclass
class _Network:
    """A backbone cut into a frozen front and a trainable back, with its new head."""

    base: Backbone
    front: nn.Module
    back: nn.Module
    head: nn.Module
    device: torch.device
    n_front_blocks: int

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        # Cached crops still need normalising; cached front activations go straight into the back.
        if self.n_front_blocks == 0:
            return normalise_crops(inputs, self.base.mean, self.base.std)
        return inputs

    def state(self) -> dict[str, torch.Tensor]:
        """What training changed: the back's and the head's tensors (``back.*``, ``head.*``)."""
        return {**{f"back.{name}": value for name, value in self.back.state_dict().items()},
                **{f"head.{name}": value for name, value in self.head.state_dict().items()}}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        for prefix, module in (("back.", self.back), ("head.", self.head)):
            module.load_state_dict({name[len(prefix):]: value for name, value in tensors.items()
                                    if name.startswith(prefix)})

    def freeze(self) -> None:
        self.base.model.requires_grad_(False)
        self.head.requires_grad_(False)
        for module in (self.base.model, self.front, self.back, self.head):
            module.to(self.device).eval()


class _RoiNetworkEstimator(BaseEstimator):
    """Parameters and fitting shared by :class:`CnnClassifier` and :class:`FineTunedEmbeddings`.

    Args:
        backbone: registry name (``efficientnet_lite0``, ``resnet50``, ``resnet101``, ``vgg19``,
            ``googlenet``, ``inception_v3``).
        weights: ``"imagenet"``, a state-dict path, or ``None`` (random, seeded).
        weights_dir: the checked store of torchvision's ImageNet files.
        trainable: ``"last_blocks"`` (the last ``n_last_blocks`` blocks and the head),
            ``"all"`` (end to end) or ``"head"`` (frozen network: the paper's transfer learning).
        n_last_blocks: blocks trained with ``trainable="last_blocks"`` (see
            :func:`~dlradiomics.features.deep.stages.backbone_blocks` for what a block is).
        image_size: side of the network input; ``None``: the backbone's own (224, Inception 299).
            Smaller is cheaper (128 costs about a third of 224).
        margin: crop margin around the lesion's box (fraction of its size on each side).
        views: fixed views whose cached activations train the last blocks (``identity``,
            ``hflip``); end to end, random flips and affine changes are drawn instead.
        epochs: most epochs.
        patience: epochs without a lower validation loss before stopping.
        batch_size: rows per step.
        learning_rate: AdamW step size of the trainable blocks.
        head_learning_rate: AdamW step size of the new head.
        weight_decay: AdamW weight decay.
        dropout: dropout before the head.
        validation_fraction: share of the training patients held out for early stopping (grouped
            by patient, stratified by label); 0 trains all ``epochs`` without it.
        store_dir: feature store folder for crops, front activations and fitted networks; ``None``
            keeps crops and activations in this process only and memoises nothing.
        device: ``"cuda"``, ``"cpu"``...; default CUDA when available.
        n_threads: torch CPU threads while fitting and predicting; ``None`` leaves torch's setting.
        seed: seed of random weights, the validation split, the head and the batch order.
    """

    def __init__(self, backbone: str = "efficientnet_lite0", weights: str | None = "imagenet", *,
                 weights_dir: str | None = None, trainable: str = "last_blocks", n_last_blocks: int = 1,
                 image_size: int | None = None, margin: float = DEFAULT_MARGIN,
                 views: tuple[str, ...] = ("identity", "hflip"), epochs: int = 15, patience: int = 3,
                 batch_size: int = 32, learning_rate: float = 1e-4, head_learning_rate: float = 1e-3,
                 weight_decay: float = 1e-4, dropout: float = 0.2, validation_fraction: float = 0.2,
                 store_dir: str | None = None, device: str | None = None, n_threads: int | None = None,
                 seed: int = 0):
        self.backbone = backbone
        self.weights = weights
        self.weights_dir = weights_dir
        self.trainable = trainable
        self.n_last_blocks = n_last_blocks
        self.image_size = image_size
        self.margin = margin
        self.views = views
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.validation_fraction = validation_fraction
        self.store_dir = store_dir
        self.device = device
        self.n_threads = n_threads
        self.seed = seed

    # -- fitting ---------------------------------------------------------------------------------

    def _n_back_blocks(self) -> int | None:
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {TRAINABLE}, got {self.trainable!r}")
        if self.trainable == "all":
            return None
        if self.trainable == "head":
            return 0
        if self.n_last_blocks < 1:
            raise ValueError(f"n_last_blocks must be at least 1 with trainable='last_blocks', got {self.n_last_blocks}")
        return self.n_last_blocks

    def _training_settings(self) -> TrainingSettings:
        return TrainingSettings(epochs=self.epochs, patience=self.patience, batch_size=self.batch_size,
                                learning_rate=self.learning_rate, head_learning_rate=self.head_learning_rate,
                                weight_decay=self.weight_decay, dropout=self.dropout, seed=self.seed)

    def fit(self, X, y):
        """Train the network on the ROI table ``X`` with labels ``y`` (its validation rows are some of them).

        Args:
            X: ROI table (see :func:`roi_rows`).
            y: class of each row.

        Returns:
            self
        """
        self._fit_network(X, y)
        self.n_features_out_ = int(self.network_state_["head.1.weight"].shape[1])
        return self

    # -- the network at run time -----------------------------------------------------------------

    def _build_network(self) -> _Network:
        """The backbone split for training: base weights, frozen front, trainable back, a new head."""
        backbone = create_backbone(self.backbone, self.weights, seed=self.seed, weights_dir=self.weights_dir)
        n_back = self._n_back_blocks()
        front, back = split_backbone(backbone, n_back)
        device = torch.device(self.device) if self.device is not None else default_device()
        head = new_head(backbone.embedding_dim, len(self.classes_), self.dropout, self.seed)
        n_blocks = len(backbone_blocks(backbone))
        return _Network(base=backbone, front=front, back=back, head=head, device=device,
                        n_front_blocks=0 if n_back is None else n_blocks - n_back)

    def _network(self) -> _Network:
        """The fitted network; rebuilt from ``network_state_`` after unpickling (e.g. from a bundle)."""
        check_is_fitted(self, "network_state_")
        network = self.__dict__.get("_runtime")
        if network is None:
            network = self._build_network()
            network.load_state({name: torch.from_numpy(np.array(value)) for name, value in self.network_state_.items()})
            network.freeze()
            self._runtime = network
        return network

    def _arrays(self, network: _Network, rows: pd.DataFrame, views: tuple[str, ...]) -> RoiArrays:
        settings = CropSettings(margin=self.margin)
        if network.n_front_blocks == 0:
            return roi_crops(rows, input_size=self.input_size_, settings=settings, store_dir=self.store_dir)
        return front_activations(rows, network.base, network.front, n_front_blocks=network.n_front_blocks,
                                 input_size=self.input_size_, settings=settings, views=views,
                                 store_dir=self.store_dir, batch_size=max(self.batch_size, 32),
                                 device=network.device)

    def _fit_network(self, X, y) -> None:
        self._n_back_blocks()
        settings = self._training_settings()
        rows = roi_rows(X)
        y = np.asarray(y)
        if len(y) != len(rows):
            raise ValueError(f"X has {len(rows)} rows but y has {len(y)}")
        check_classification_targets(y)
        self.__dict__.pop("_runtime", None)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"training a CNN needs two classes in y, got only {self.classes_.tolist()}")
        network = self._build_network()
        self.input_size_ = int(self.image_size or network.base.input_size)
        self.n_front_blocks_ = network.n_front_blocks

        end_to_end = network.n_front_blocks == 0
        data = self._arrays(network, rows, ("identity",) if end_to_end else tuple(self.views))
        self.failures_ = list(data.failures)
        for failure in data.failures:
            logger.warning("CNN training skips ROI %s of patient %s (%s): %s", failure["roi_id"], failure["patient_id"],
                           failure["image"], failure["error"])
        labels = encoded[data.positions]
        groups = rows["patient_id"].to_numpy()[data.positions]
        if len(np.unique(labels)) < 2:
            raise ValueError("fewer than two classes left among the readable training ROIs")
        validation = validation_split(labels, groups, self.validation_fraction, self.seed)
        self.n_validation_patients_ = int(len(np.unique(groups[validation])))
        self.n_training_rois_ = int(len(labels))

        key = self._memo_key(network, data, labels)
        if not self._load_memoised(network, key):
            network.back.requires_grad_(True)
            train_inputs = {view: tensor[~validation] for view, tensor in data.arrays.items()}
            val_inputs = data.arrays["identity"][validation] if validation.any() else None
            with _torch_threads(self.n_threads):
                result = train_back_and_head(
                    network.back, network.head, train_inputs, labels[~validation], val_inputs, labels[validation],
                    settings=settings, prepare=network.prepare,
                    augment=end_to_end_augmentation() if end_to_end else None, device=network.device)
            self.history_ = pd.DataFrame(result.history).to_dict(orient="list")
            self.best_epoch_ = result.best_epoch
        network.freeze()
        self.network_state_ = {name: tensor.detach().float().cpu().numpy().copy()
                               for name, tensor in network.state().items()}
        self._memoise(key)
        # Embeddings, Grad-CAM and the store see the tuned weights under their own id, never mixed
        # with the ImageNet ones.
        self.weights_id_ = f"{network.base.weights_id}-tuned-{key[:12]}"
        self._runtime = network

    # -- memo of fitted networks -------------------------------------------------------------------

    def _memo_key(self, network: _Network, data: RoiArrays, labels: np.ndarray) -> str:
        parameters = {name: value for name, value in self.get_params().items()
                      if name not in ("store_dir", "device", "n_threads", "weights_dir")}
        return content_key({"rois": data.identities, "labels": labels.tolist(), "classes": self.classes_.tolist(),
                            "weights_id": network.base.weights_id, "parameters": parameters,
                            "torch": torch.__version__, "code_version": TRAINING_CODE_VERSION})

    def _memo_namespace(self) -> str:
        return f"deep-tuned/{self.backbone}"

    def _load_memoised(self, network: _Network, key: str) -> bool:
        if self.store_dir is None:
            return False
        store = FeatureStore(self.store_dir)
        state = store.get(self._memo_namespace(), key)
        history = store.get(self._memo_namespace() + "-history", key)
        if state is None or history is None:
            return False
        network.load_state({row.name: torch.from_numpy(np.array(row.values, dtype=np.float32).reshape(row.shape))
                            for row in state.itertuples(index=False)})
        self.history_ = history.drop(columns=["best_epoch"]).to_dict(orient="list")
        self.best_epoch_ = int(history["best_epoch"].iloc[0])
        logger.info("fitted %s network read back from the store (%s)", self.backbone, key[:12])
        return True

    def _memoise(self, key: str) -> None:
        if self.store_dir is None:
            return
        store = FeatureStore(self.store_dir)
        if (self._memo_namespace(), key) in store:
            return
        records = [(name, list(value.shape), value.ravel()) for name, value in self.network_state_.items()]
        store.put(self._memo_namespace(), key, pd.DataFrame(records, columns=["name", "shape", "values"]))
        store.put(self._memo_namespace() + "-history", key,
                  pd.DataFrame(self.history_).assign(best_epoch=self.best_epoch_))

    # -- inference ---------------------------------------------------------------------------------

    def _embeddings(self, X) -> np.ndarray:
        """Embeddings ``(n_rows, embedding_dim)`` of the fitted network; NaN rows for unreadable ROIs."""
        network = self._network()
        rows = roi_rows(X)
        with _torch_threads(self.n_threads):
            data = self._arrays(network, rows, ("identity",))
            output = np.full((len(rows), network.base.embedding_dim), np.nan, dtype=np.float32)
            inputs = data.arrays["identity"]
            chunks = []
            with torch.inference_mode():
                for start in range(0, len(inputs), 64):
                    batch = network.prepare(inputs[start:start + 64]).to(network.device)
                    chunks.append(network.back(batch).float().cpu())
            if chunks:
                output[data.positions] = torch.cat(chunks).numpy()
        for failure in data.failures:
            logger.warning("no CNN output for ROI %s of patient %s (%s): %s", failure["roi_id"], failure["patient_id"],
                           failure["image"], failure["error"])
        return output

    def _head_probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        network = self._network()
        probabilities = np.full((len(embeddings), len(self.classes_)), np.nan)
        readable = ~np.isnan(embeddings).any(axis=1)
        if readable.any():
            with torch.inference_mode():
                logits = network.head(torch.from_numpy(embeddings[readable]).to(network.device)).float().cpu()
            probabilities[readable] = torch.softmax(logits.double(), dim=1).numpy()
        return probabilities

    def gradcam_network(self) -> tuple[Backbone, nn.Module]:
        """The fitted network for :func:`~dlradiomics.features.deep.grad_cam_roi`: ``(backbone, head)``.

        The backbone carries the fine-tuned weights and the input size trained on; Grad-CAM then
        explains the network this estimator predicts with, not the ImageNet one.
        """
        network = self._network()
        return dataclasses.replace(network.base, input_size=self.input_size_, weights_id=self.weights_id_), network.head

    def grad_cam(self, image: np.ndarray, mask: np.ndarray, *, target_class: int = 1) -> GradCamResult:
        """Grad-CAM of one ROI through the fitted network and its head, with the crop settings it trained on.

        Args:
            image: 2D greyscale image.
            mask: 2D lesion mask.
            target_class: index into ``classes_`` of the class to explain (1: the second class,
                malignant for 0/1 labels).
        """
        backbone, head = self.gradcam_network()
        return grad_cam_roi(backbone, head, image, mask, settings=CropSettings(margin=self.margin),
                            target_class=target_class)

    def __getstate__(self):
        # Only plain values and arrays: the torch modules are rebuilt from `network_state_` on first
        # use, so a fitted estimator pickles small and skops can save it in a bundle as data.
        state = super().__getstate__()
        state.pop("_runtime", None)
        return state


class CnnClassifier(ClassifierMixin, _RoiNetworkEstimator):
    """A CNN trained on the ROIs of the rows it is fitted on; predicts from the network's own head.

    The paper's CNN baselines inside the same outer folds as every other model. See
    :class:`_RoiNetworkEstimator` for the parameters.

    Attributes:
        classes_: the class labels, sorted.
        network_state_: the trained tensors (``back.*``: the trained blocks, ``head.*``: the new
            ``Dropout -> Linear`` head) as arrays; the rest of the network is the ``weights``'.
        weights_id_: names the fitted weights (``{base weights}-tuned-{fit key}``).
        input_size_: the input side trained on.
        history_: per-epoch ``{"epoch": [...], "train_loss": [...], "val_loss": [...], "val_auc": [...]}``
            (plain lists, so the fitted estimator stays plain data; ``pandas.DataFrame(history_)``).
        best_epoch_: the epoch kept by early stopping.
        n_validation_patients_: patients held out of training for early stopping.
        n_training_rois_: readable ROIs fitted on (training and validation).
        failures_: records ``roi_id, patient_id, image, mask, error`` of training ROIs that could
            not be read (left out).
    """

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the network's head, columns in the order of ``classes_``; NaN rows for unreadable ROIs."""
        return self._head_probabilities(self._embeddings(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row (rows without a probability raise)."""
        probabilities = self.predict_proba(X)
        if np.isnan(probabilities).any():
            raise ValueError("some ROIs could not be read; use predict_proba to see which rows have no prediction")
        return self.classes_[np.argmax(probabilities, axis=1)]


class FineTunedEmbeddings(TransformerMixin, _RoiNetworkEstimator):
    """Deep features from a network fine-tuned on the rows it is fitted on (training patients only).

    ``fit`` fine-tunes as :class:`CnnClassifier` does; ``transform`` returns the fine-tuned
    network's global-average-pool embedding of each row (``deep_0000``...), NaN for an ROI that
    cannot be read. See :class:`_RoiNetworkEstimator` for the parameters.
    """

    def transform(self, X) -> np.ndarray:
        """Embeddings ``(n_rows, embedding_dim)`` of the fine-tuned network."""
        return self._embeddings(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``deep_0000`` ... ``deep_{embedding_dim - 1}``."""
        check_is_fitted(self, "network_state_")
        return np.asarray(deep_column_names(self.n_features_out_), dtype=object)

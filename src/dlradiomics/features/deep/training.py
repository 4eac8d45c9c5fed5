"""Training the back of a network and a new head, with early stopping on a validation split.

Shared by :class:`~dlradiomics.features.deep.cnn.CnnClassifier` (the CNN baselines) and
:class:`~dlradiomics.features.deep.cnn.FineTunedEmbeddings` (fine-tuned deep features). The
caller decides which patients validate; this module only sees tensors.

Conventions (they make a fit reproducible from its seed and the row order):

- batch norm keeps its running statistics (the back stays in eval mode; its affine parameters
  train): stable for the small batches of medical data sets, and the reason the frozen front's
  output can be cached;
- the head is ``Dropout`` + ``Linear``, initialised after ``torch.manual_seed(seed)``;
- each epoch draws one random view (and, end to end, one random augmentation) per training row;
- the state with the lowest validation loss is kept; training stops after ``patience`` epochs
  without improvement.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn


@dataclass(frozen=True)
class TrainingSettings:
    """How the back and the head are trained.

    Args:
        epochs: most passes over the training rows.
        patience: stop after this many epochs without a lower validation loss.
        batch_size: rows per step.
        learning_rate: AdamW step size of the network's trainable blocks.
        head_learning_rate: AdamW step size of the new head.
        weight_decay: AdamW decoupled weight decay.
        dropout: dropout before the head's linear layer.
        seed: seed of the head, the batch order, the views and the augmentation.
    """

    epochs: int = 15
    patience: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError(f"epochs ({self.epochs}), batch_size ({self.batch_size}) and patience "
                             f"({self.patience}) must be at least 1")
        if self.learning_rate <= 0 or self.head_learning_rate <= 0 or not 0 <= self.dropout < 1:
            raise ValueError("learning rates must be > 0 and dropout in [0, 1)")


@dataclass
class TrainingResult:
    """What :func:`train_back_and_head` returns.

    Attributes:
        best_epoch: the epoch (1-based) whose state was kept.
        history: one record per epoch: ``epoch, train_loss, val_loss, val_auc`` (NaN without
            validation rows or with one class among them).
        stopped_early: whether patience ran out before ``epochs``.
    """

    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def new_head(embedding_dim: int, n_classes: int, dropout: float, seed: int) -> nn.Sequential:
    """A fresh classification head ``Dropout -> Linear``, its weights drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(embedding_dim, n_classes))


def _logits_in_batches(back: nn.Module, head: nn.Module, inputs: torch.Tensor, prepare: Callable[[torch.Tensor], torch.Tensor],
                       batch_size: int, device: torch.device) -> torch.Tensor:
    head.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            outputs.append(head(back(prepare(inputs[start:start + batch_size]).to(device))).float().cpu())
    return torch.cat(outputs) if outputs else torch.empty((0, 2))


def train_back_and_head(back: nn.Module, head: nn.Module, train_views: dict[str, torch.Tensor], train_labels: np.ndarray,
                        val_inputs: torch.Tensor | None, val_labels: np.ndarray | None, *,
                        settings: TrainingSettings, prepare: Callable[[torch.Tensor], torch.Tensor],
                        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                        device: torch.device | str = "cpu") -> TrainingResult:
    """Train ``back`` and ``head`` in place; leave them at the state of the best validation loss.

    Args:
        back: the trainable blocks (with global pooling), mapping prepared inputs to embeddings.
        head: the new head (:func:`new_head`).
        train_views: view name -> training inputs ``(N, ...)`` (cached front activations, or crops).
        train_labels: integer classes ``(N,)``.
        val_inputs: validation inputs (one view), or ``None`` to train all ``epochs`` without
            early stopping (too few patients to hold some out).
        val_labels: their classes.
        settings: the training settings.
        prepare: maps a batch of stored inputs to the back's input (normalisation of crops; the
            identity for front activations).
        augment: random augmentation applied to a training batch before ``prepare`` (end to end
            only: front activations are already fixed views).
        device: where to train.

    Returns:
        The epoch kept and the per-epoch history.
    """
    device = torch.device(device)
    back.to(device).eval()
    head.to(device)
    trainable = [parameter for parameter in back.parameters() if parameter.requires_grad]
    groups = [{"params": list(head.parameters()), "lr": settings.head_learning_rate}]
    if trainable:
        groups.append({"params": trainable, "lr": settings.learning_rate})
    optimizer = torch.optim.AdamW(groups, weight_decay=settings.weight_decay)
    loss_function = nn.CrossEntropyLoss()
    targets = torch.from_numpy(np.asarray(train_labels, dtype=np.int64))
    view_names = list(train_views)
    generator = torch.Generator().manual_seed(settings.seed)
    n_rows = len(targets)

    best_loss, best_epoch, best_state = math.inf, 0, None
    result = TrainingResult(best_epoch=0)
    epochs_without_gain = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)  # torchvision's random transforms draw from the global generator
        for epoch in range(1, settings.epochs + 1):
            head.train()
            order = torch.randperm(n_rows, generator=generator)
            view_of_row = torch.randint(len(view_names), (n_rows,), generator=generator)
            total_loss = 0.0
            for start in range(0, n_rows, settings.batch_size):
                rows = order[start:start + settings.batch_size]
                batch = torch.empty((len(rows), *train_views[view_names[0]].shape[1:]))
                for view_index, view in enumerate(view_names):
                    chosen = view_of_row[rows] == view_index
                    batch[chosen] = train_views[view][rows[chosen]]
                if augment is not None:
                    batch = augment(batch)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_function(head(back(prepare(batch).to(device))), targets[rows].to(device))
                loss.backward()
                optimizer.step()
                total_loss += float(loss.detach()) * len(rows)
            record = {"epoch": epoch, "train_loss": total_loss / n_rows, "val_loss": math.nan, "val_auc": math.nan}
            if val_inputs is not None and len(val_inputs):
                logits = _logits_in_batches(back, head, val_inputs, prepare, settings.batch_size * 2, device)
                val_targets = torch.from_numpy(np.asarray(val_labels, dtype=np.int64))
                record["val_loss"] = float(loss_function(logits, val_targets))
                if len(np.unique(val_labels)) == 2:
                    record["val_auc"] = float(roc_auc_score(val_labels, torch.softmax(logits, 1)[:, 1].numpy()))
            result.history.append(record)
            monitored = record["val_loss"] if not math.isnan(record["val_loss"]) else -epoch  # no validation: keep the last
            if monitored < best_loss - 1e-4:
                best_loss, best_epoch, epochs_without_gain = monitored, epoch, 0
                best_state = (copy.deepcopy(back.state_dict()), copy.deepcopy(head.state_dict()))
            else:
                epochs_without_gain += 1
                if epochs_without_gain >= settings.patience:
                    result.stopped_early = epoch < settings.epochs
                    break
    assert best_state is not None
    back.load_state_dict(best_state[0])
    head.load_state_dict(best_state[1])
    back.eval()
    head.eval()
    result.best_epoch = best_epoch
    return result


def end_to_end_augmentation() -> Callable[[torch.Tensor], torch.Tensor]:
    """Random mirror, small rotation, shift and zoom of a batch of 0-1 crops ``(N, S, S)``, one draw per crop."""
    from torchvision.transforms import v2

    transform = v2.Compose([v2.RandomHorizontalFlip(),
                            v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1))])

    def augment(crops: torch.Tensor) -> torch.Tensor:
        return torch.stack([transform(crop[None])[0] for crop in crops])

    return augment

"""Optional: fine-tune the backbone's last convolutional block with augmentation (for GPU users).

Beyond the paper's protocol, which freezes every convolutional layer. Unfreezing the last block
changes the embeddings, so they can no longer be cached per ROI and every epoch runs the network:
worth it on a GPU, slow on a CPU. Like every fitted step, call it on training folds only.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import torch
from torch import nn

from dlradiomics.features.deep.backbones import Backbone
from dlradiomics.features.deep.embeddings import default_device
from dlradiomics.features.deep.head import seeded_linear_head


def default_augmentation() -> nn.Module:
    """Flips, small rotations, shifts and zooms: changes a lesion's look, not its diagnosis."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomHorizontalFlip(),
        v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1)),
    ])


def fine_tune_last_block(backbone: Backbone, inputs: torch.Tensor, labels: np.ndarray, *, epochs: int = 20,
                         learning_rate: float = 0.001, momentum: float = 0.9, batch_size: int = 32,
                         seed: int = 0, augmentation: nn.Module | None = None,
                         device: str | torch.device | None = None) -> tuple[Backbone, nn.Linear]:
    """Train the last convolutional block and a new head together; the rest of the network stays frozen.

    Batch norm keeps its ImageNet running statistics (the network stays in eval mode), which is
    the stable choice for the small batches of medical data sets.

    Args:
        backbone: the starting backbone; it is not modified.
        inputs: preprocessed training crops ``(N, 3, S, S)`` (see :func:`prepare_roi`).
        labels: integer classes 0..K-1 of the crops.
        epochs: passes over the training crops.
        learning_rate: SGD learning rate.
        momentum: SGD momentum.
        batch_size: crops per step.
        seed: seed of the head, the batch order and the augmentation.
        augmentation: transform applied to each batch; default :func:`default_augmentation`.
            ``torch.nn.Identity()`` switches it off.
        device: where to train; default CUDA when available.

    Returns:
        ``(fine_tuned_backbone, head)``: a new :class:`Backbone` (its ``weights_id`` names the
        fine-tuning, so its embeddings never mix with the frozen ones in the store) and the head.
    """
    device = torch.device(device) if device is not None else default_device()
    augmentation = augmentation if augmentation is not None else default_augmentation()
    tuned = copy.deepcopy(backbone)
    trunk, block = tuned.model, tuned.last_block
    block.requires_grad_(True)
    targets = torch.from_numpy(np.array(labels, dtype=np.int64))
    head = seeded_linear_head(tuned.embedding_dim, int(targets.max()) + 1, seed)
    network = nn.Sequential(trunk, head).to(device).eval()
    optimizer = torch.optim.SGD(list(block.parameters()) + list(head.parameters()), lr=learning_rate,
                                momentum=momentum)
    order_generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the augmentation draws from the global generator
        for _ in range(epochs):
            order = torch.randperm(len(targets), generator=order_generator)
            for start in range(0, len(targets), batch_size):
                batch = order[start:start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                logits = network(augmentation(inputs[batch]).to(device))
                nn.functional.cross_entropy(logits, targets[batch].to(device)).backward()
                optimizer.step()
    trunk.requires_grad_(False)
    network.cpu()
    signature = hashlib.sha256(f"{backbone.weights_id}|{epochs}|{learning_rate}|{momentum}|{batch_size}|{seed}|"
                               f"{len(targets)}|{inputs.sum().item():.6e}".encode()).hexdigest()[:12]
    tuned.weights_id = f"{backbone.weights_id}-finetuned-{signature}"
    return tuned, head.eval()

"""One torch thread for small pieces of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_torch_thread() -> Iterator[None]:
    """Run the block on one torch thread, then restore the previous count.

    Work of a few milliseconds per call (a linear head's training step, one image's Grad-CAM)
    gains nothing from torch's thread pool and loses much when the cores are busy: its threads
    wait for each other. Measured on a loaded 2-core machine: 100 epochs of a linear head on 120
    samples 34 s vs 0.3 s; Grad-CAM of 8 ROIs on EfficientNet-Lite0 16.5 vs 0.85 CPU-seconds.
    Batched embeddings are not small work and keep the default.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

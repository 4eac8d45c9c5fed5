"""Fixtures shared by the deep-feature tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture()
def single_torch_thread():
    """Run torch on one thread: on a small, busy CI machine its thread pool is many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Fixtures of the library tests."""

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # The tiny networks of these tests gain nothing from a second thread, and OpenMP threads that
    # spin while waiting slow a busy 2-core machine down several-fold (as in tests/trainer).
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)

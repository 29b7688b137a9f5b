"""Alignment tests run torch single-threaded: their matrices are tiny, and on a shared 2-core
machine intra-op threads contend so badly that a 100x8 SVD can take 0.2 s instead of 0.2 ms."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)

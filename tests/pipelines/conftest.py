"""Pipeline tests run single-threaded: tiny models stall in OpenMP spin-waits when the two cores
are shared (measured: a tiny SD call takes 0.47 s CPU with 2 threads under load, 0.024 s with 1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)

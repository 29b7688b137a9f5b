"""Single-threaded torch for tiny-model tests.

Tiny models gain nothing from intra-op threads and stall in OpenMP spin-waits when the 2 shared
cores are busy (measured: a tiny SD call took 0.47 s CPU with 2 threads under load, 0.024 s
with 1; a 100x8 SVD 0.2 s instead of 0.2 ms). Real-model tests keep torch's default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)

"""Shared test settings: never touch a model hub, keep caches out of the user's home."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _one_thread_for_tiny_models(request):
    """See tests/threads.py; tests marked ``real`` keep torch's default thread count."""
    if request.node.get_closest_marker("real"):
        yield
        return
    from tests.threads import one_torch_thread

    with one_torch_thread():
        yield


@pytest.fixture
def gen():
    import torch

    return torch.Generator().manual_seed(0)

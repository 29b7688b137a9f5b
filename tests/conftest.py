"""Shared test settings: never touch a model hub, keep caches out of the user's home."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def gen():
    import torch

    return torch.Generator().manual_seed(0)

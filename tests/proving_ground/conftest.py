"""Shared fixtures: a tiny deterministic token encoder built in code (no model download)."""

from __future__ import annotations

import hashlib
import re

import pytest
import torch


class HashTokenEncoder:
    """Maps each word to a fixed pseudo-random vector; a CLS/SEP pair frames every text."""

    model_id = "test-hash-encoder"

    def __init__(self, dim: int = 8) -> None:
        self.dim = dim

    def _vec(self, word: str) -> torch.Tensor:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
        return torch.randn(self.dim, generator=torch.Generator().manual_seed(seed))

    def encode_tokens(self, texts, layer=None, max_length=77, batch_size=32, progress=None):
        states = torch.zeros(len(texts), max_length, self.dim)
        mask = torch.zeros(len(texts), max_length, dtype=torch.bool)
        for i, t in enumerate(texts):
            words = ["[CLS]", *re.findall(r"[a-z]+", t.lower()), "[SEP]"][:max_length]
            for j, w in enumerate(words):
                states[i, j] = self._vec(w)
            mask[i, : len(words)] = True
        return states, mask


@pytest.fixture
def hash_encoder() -> HashTokenEncoder:
    return HashTokenEncoder()


@pytest.fixture(autouse=True)
def _one_thread():
    # the test machine is shared; one thread avoids oversubscription stalls
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)

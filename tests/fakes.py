"""A deterministic bag-of-words `Encoder` for fast workflow tests (no model weights).

Each word maps to a seeded random vector; a text is the mean of its words' vectors, plus a fixed
offset per layer so layers differ. Words in ``UNSAFE_WORDS`` share a common component, so an
unsafe/safe direction exists and can be recovered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from xsteer.encoders.base import Encoder
from xsteer.steer.probe import SourceProbe

UNSAFE_WORDS = {"knife", "blood", "stabbing", "nude", "gun", "drugs", "corpse"}


class BagOfWordsEncoder(Encoder):
    def __init__(self, dim: int = 24, num_layers: int = 3, model_id: str = "fake/bow",
                 seed: int = 0, project: torch.Tensor | None = None) -> None:
        # ``project`` (dim, out): a second model that sees the same words through a linear map
        self.project = project
        out = dim if project is None else project.shape[1]
        self.dim, self.num_layers, self.model_id, self.revision = out, num_layers, model_id, None
        self.word_dim = dim
        self.default_layer, self.seed, self.cache = num_layers, seed, None
        g = torch.Generator().manual_seed(seed + 999)
        self.unsafe_axis = torch.randn(dim, generator=g)
        if project is not None:
            self.unsafe_axis = self.unsafe_axis @ project
        self.calls = 0

    def _word(self, w: str) -> torch.Tensor:
        h = int(hashlib.sha256(f"{self.seed}:{w}".encode()).hexdigest()[:8], 16)
        v = torch.randn(self.word_dim, generator=torch.Generator().manual_seed(h))
        g = torch.Generator().manual_seed(self.seed + 999)
        v = v + (3.0 * torch.randn(self.word_dim, generator=g) if w in UNSAFE_WORDS else 0.0)
        return v if self.project is None else v @ self.project

    def _text(self, t: str, layer: int) -> torch.Tensor:
        words = t.lower().replace(",", " ").split() or ["<empty>"]
        return torch.stack([self._word(w) for w in words]).mean(0) * (1.0 + 0.1 * layer)

    def _compute(self, texts: list[str], layers: list[int], pooling: str, batch_size: int,
                 progress: bool | None) -> dict[int, torch.Tensor]:
        self.calls += 1
        return {layer: torch.stack([self._text(t, layer) for t in texts]) for layer in layers}

    def encode_tokens(self, texts: Sequence[str], layer: int | None = None, max_length: int = 77,
                      batch_size: int = 32, progress: bool | None = None):
        pooled = self.encode(texts, layer)
        return pooled[:, None, :].repeat(1, 2, 1), torch.ones(len(texts), 2, dtype=torch.long)


class KeywordEncoder(Encoder):
    """A source "model" whose features count planted keywords: feature ``j`` is 1 where the text
    holds ``keywords[j]``, at every layer. With `planted_probe` it makes a source gate whose
    decisions are known exactly; ``calls`` counts the texts it read."""

    def __init__(self, keywords: Sequence[str] = ("gun", "nude"), num_layers: int = 2,
                 model_id: str = "fake/keywords") -> None:
        self.keywords = tuple(keywords)
        self.dim, self.num_layers, self.model_id = len(self.keywords), num_layers, model_id
        self.revision, self.default_layer, self.cache = None, num_layers, None
        self.config = None
        self.calls = 0

    def _compute(self, texts: list[str], layers: list[int], pooling: str, batch_size: int,
                 progress: bool | None) -> dict[int, torch.Tensor]:
        self.calls += len(texts)
        feats = torch.tensor([[float(k in t.lower().split()) for k in self.keywords]
                              for t in texts]).reshape(len(texts), self.dim)
        return {layer: feats.clone() for layer in layers}

    def encode_tokens(self, texts: Sequence[str], layer: int | None = None, max_length: int = 77,
                      batch_size: int = 32, progress: bool | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


def planted_probe(encoder: KeywordEncoder, categories: Sequence[str] = ("violence", "sexual"),
                  layers: tuple[int, ...] = (1,)) -> SourceProbe:
    """A calibrated `SourceProbe` on ``encoder`` whose category ``j`` fires exactly when the text
    holds ``encoder.keywords[j]`` (logit ``+1`` with it, ``-1`` without; threshold 0)."""
    from xsteer.steer.source_gate import source_identity

    k, L = len(encoder.keywords), len(layers)
    W = torch.zeros(len(categories) + 1, k * L)
    for j in range(len(categories)):
        W[j, j] = 2.0
    W[-1, :k] = 2.0  # global: any keyword
    b = torch.full((len(categories) + 1,), -1.0)
    b[-1] = -1.0
    return SourceProbe(model_id=encoder.model_id, layers=layers, mean_=torch.zeros(k * L),
                       scale_=torch.ones(k * L), coef_=W, intercept_=b,
                       names_=(*categories, "global"), threshold_=0.0, half_threshold_=0.5,
                       calibration_={"q": 0.01, "delta": 0.05, "benign_n": 0},
                       source=source_identity(encoder, layers))

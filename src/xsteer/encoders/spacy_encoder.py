"""`SpacyEncoder`: spaCy pipeline token vectors (en_core_web_sm: 96-dim CNN ``tok2vec``).

A deliberately different representation from the transformers: a small CNN without attention.
It has no layers to choose from (``num_layers == 0``, the single site ``layer:0``); mean pooling
gives exactly ``doc.vector`` (the mean of the token vectors), "last" the last token's vector.
Only the ``tok2vec`` component runs: tagger, parser, NER and lemmatizer do not change the
token vectors and would only cost time.

>>> enc = get_encoder("en-core-web-sm")  # doctest: +SKIP
>>> enc.encode(["a cat"]).shape  # doctest: +SKIP
torch.Size([1, 96])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from xsteer.encoders.base import Encoder, check_texts, show_progress
from xsteer.encoders.cache import EmbeddingCache
from xsteer.encoders.pooling import pool
from xsteer.errors import XSteerError, require
from xsteer.models.registry import ModelSpec

# Components that never touch doc.tensor in the en_core_web_* pipelines.
_UNUSED = ["tagger", "parser", "attribute_ruler", "lemmatizer", "ner", "senter", "morphologizer"]
DEFAULT_DIM = 96


class SpacyEncoder(Encoder):
    """Mean (or last) of a spaCy pipeline's token vectors; the pipeline loads on first use."""

    def __init__(self, spec: ModelSpec | None = None, *, nlp: Any = None,
                 model_id: str | None = None, revision: str | None = None,
                 dim: int | None = None, cache: EmbeddingCache | None = None) -> None:
        if spec is None and nlp is None:
            raise XSteerError("SpacyEncoder needs a ModelSpec or a loaded spaCy pipeline")
        self.spec = spec
        self._nlp = nlp
        self.model_id = model_id or (spec.model_id if spec is not None else "spacy")
        self.revision = revision if revision is not None else (
            spec.revision if spec is not None else None)
        self.num_layers = 0
        self.default_layer = 0
        self.default_pooling = "mean"
        self.drop_bos = False
        self.cache = cache
        # The width is read from the pipeline when held; otherwise en_core_web_sm's 96 avoids
        # loading spaCy just to answer from the cache (checked again on first real use).
        self.dim = int(dim) if dim is not None else (
            self._width(nlp) if nlp is not None else DEFAULT_DIM)

    @staticmethod
    def _width(nlp: Any) -> int:
        return int(nlp("a").tensor.shape[1])

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            spacy = require("spacy", "offline-models")
            assert self.spec is not None
            self._nlp = spacy.load(self.spec.path, exclude=_UNUSED)
            width = self._width(self._nlp)
            if width != self.dim:
                raise XSteerError(f"spaCy pipeline {self.model_id} gives {width}-dim vectors, "
                                  f"expected {self.dim}; pass dim={width}")
        return self._nlp

    def cache_settings(self) -> dict[str, Any]:
        return {"encoder": "SpacyEncoder"}

    def _token_vectors(self, texts: list[str], batch_size: int,
                       progress: bool | None) -> list[np.ndarray]:
        from tqdm.auto import tqdm

        docs = self.nlp.pipe(texts, batch_size=batch_size)
        vecs = []
        for doc in tqdm(docs, total=len(texts), desc=f"encode {self.model_id}", unit="text",
                        disable=not show_progress(progress, len(texts) // batch_size)):
            t = np.asarray(doc.tensor, dtype=np.float32)
            vecs.append(t.reshape(-1, self.dim) if t.size else np.zeros((0, self.dim), np.float32))
        return vecs

    def _compute(self, texts: list[str], layers: list[int], pooling: str, batch_size: int,
                 progress: bool | None) -> dict[int, torch.Tensor]:
        vecs = self._token_vectors(texts, batch_size, progress)
        states, mask = _pad(vecs, max(1, max(len(v) for v in vecs)), self.dim)
        pooled = pool(states, mask, pooling)
        return {layer: pooled.clone() for layer in layers}

    def encode_tokens(self, texts: Sequence[str], layer: int | None = None,
                      max_length: int = 77, batch_size: int = 32,
                      progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        texts = check_texts(texts)
        self.resolve_site(layer, None)
        return _pad(self._token_vectors(texts, batch_size, progress), max_length, self.dim)


def _pad(vecs: list[np.ndarray], length: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (and truncate) per-text token matrices to ``(n, length, dim)`` plus a mask."""
    states = torch.zeros(len(vecs), length, dim)
    mask = torch.zeros(len(vecs), length, dtype=torch.bool)
    for i, v in enumerate(vecs):
        k = min(len(v), length)
        if k:
            states[i, :k] = torch.from_numpy(v[:k])
            mask[i, :k] = True
    return states, mask

"""Reading text representations: encoders for causal LMs, sentence encoders and spaCy, with
pooling, length-sorted batching and an on-disk embedding cache.

What does not live here: resolving a name to weights (`xsteer.models`), choosing a layer
(`xsteer.align.layers`), pipelines' text encoders (`xsteer.pipelines`).

>>> enc = get_encoder("all-minilm-l6-v2")  # doctest: +SKIP
>>> X = enc.encode(["a red bicycle", "a bowl of soup"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from xsteer.encoders.base import Encoder, encoder_meta
from xsteer.encoders.cache import EmbeddingCache
from xsteer.encoders.hf import HFEncoder
from xsteer.encoders.pooling import POOLINGS, pool, pooled_mask
from xsteer.encoders.spacy_encoder import SpacyEncoder
from xsteer.errors import XSteerError


def get_encoder(name_or_path: str | os.PathLike[str] | Encoder, *,
                cache: bool | EmbeddingCache = True, trust_remote_code: bool = False,
                **kw: Any) -> Encoder:
    """An encoder for an alias, local folder or hub id (see `xsteer.models.resolve_model`).

    ``cache=True`` uses the default `EmbeddingCache` (``cache_dir()/"embeddings"``), ``False``
    none, or pass your own. Weights load on the first call that misses the cache. Extra keywords
    (``layer``-independent settings such as ``drop_bos``, ``default_layer``, ``max_length``,
    ``device``, ``dtype``) go to the encoder class. An `Encoder` passes through unchanged.
    """
    from xsteer.models import resolve_model

    if isinstance(name_or_path, Encoder):
        return name_or_path
    store = EmbeddingCache() if cache is True else (cache or None)
    spec = resolve_model(name_or_path)
    if spec.kind == "spacy":
        dtype = kw.pop("dtype", None)
        if dtype is not None and str(dtype) not in ("float32", "torch.float32"):
            raise XSteerError(f"{spec.model_id} is a spaCy pipeline: it has no dtype to set "
                              f"(got {dtype})")
        return SpacyEncoder(spec, cache=store, **kw)
    return HFEncoder(spec, cache=store, trust_remote_code=trust_remote_code, **kw)


__all__ = [
    "POOLINGS",
    "EmbeddingCache",
    "Encoder",
    "HFEncoder",
    "SpacyEncoder",
    "encoder_meta",
    "get_encoder",
    "pool",
    "pooled_mask",
]

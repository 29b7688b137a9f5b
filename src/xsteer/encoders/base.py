"""The `Encoder` interface: texts in, pooled ``(n, dim)`` features or token states out.

An encoder reads a model at a *site* — a hidden-state layer and a pooling — and answers from the
on-disk `EmbeddingCache` when it can, so a full cache hit never loads the model's weights.
Subclasses implement `_compute` (all requested layers in one forward pass) and `encode_tokens`.

>>> enc = get_encoder("all-minilm-l6-v2")  # doctest: +SKIP
>>> enc.encode(["a cat on a mat"]).shape, enc.site()  # doctest: +SKIP
(torch.Size([1, 384]), 'layer:6/mean')
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from xsteer.encoders.cache import EmbeddingCache
from xsteer.encoders.identity import config_digest
from xsteer.encoders.pooling import check_pooling
from xsteer.errors import XSteerError
from xsteer.site import Site

# More batches than this and progress=None shows a tqdm bar.
PROGRESS_MIN_BATCHES = 4


def check_texts(texts: Sequence[str] | str) -> list[str]:
    """Texts as a list of str; a bare string is refused (it would be encoded per character)."""
    if isinstance(texts, str):
        raise XSteerError("texts must be a sequence of strings, got a single str; wrap it in a list")
    out = list(texts)
    bad = [type(t).__name__ for t in out if not isinstance(t, str)]
    if bad:
        raise XSteerError(f"texts must all be str; got {bad[0]}")
    return out


def show_progress(progress: bool | None, n_batches: int) -> bool:
    return n_batches > PROGRESS_MIN_BATCHES if progress is None else bool(progress)


class Encoder(ABC):
    """Reads text representations from one model at a chosen layer and pooling.

    Attributes every encoder sets: ``model_id``, ``revision`` (recorded in artifacts), ``dim``,
    ``num_layers`` (hidden-state layers 0..num_layers, 0 = embeddings), ``default_layer``,
    ``default_pooling``, ``drop_bos`` and ``cache`` (an `EmbeddingCache` or None).
    """

    model_id: str
    revision: str | None
    dim: int
    num_layers: int
    default_layer: int
    default_pooling: str = "mean"
    drop_bos: bool = False
    cache: EmbeddingCache | None = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model_id={self.model_id!r}, revision={self.revision!r}, "
                f"dim={self.dim}, num_layers={self.num_layers}, site={self.site()!r})")

    def resolve_site(self, layer: int | None, pooling: str | None) -> tuple[int, str]:
        """Fill defaults and validate: a layer in 0..num_layers (negatives count from the end)."""
        given = self.default_layer if layer is None else int(layer)
        # as hidden_states[-1]: -1 is the last layer; the artifact records the resolved index
        layer = given + self.num_layers + 1 if given < 0 else given
        if not 0 <= layer <= self.num_layers:
            raise XSteerError(f"layer {given} out of range for {self.model_id}: hidden-state "
                              f"layers are 0..{self.num_layers} (or -{self.num_layers + 1}..-1 "
                              "counting from the end)")
        return layer, check_pooling(self.default_pooling if pooling is None else pooling)

    def site(self, layer: int | None = None, pooling: str | None = None) -> str:
        """The site name, e.g. ``"layer:6/mean"``; used as a tensor key and recorded in artifacts."""
        layer, pooling = self.resolve_site(layer, pooling)
        return str(Site.at_layer(layer, pooling))

    def cache_settings(self) -> dict[str, Any]:
        """Encoder settings beyond the site that change results (e.g. the truncation length)."""
        return {"encoder": type(self).__name__}

    def encode(self, texts: Sequence[str], layer: int | None = None, pooling: str | None = None,
               batch_size: int = 32, progress: bool | None = None) -> torch.Tensor:
        """Pooled features ``(n, dim)`` float32 of ``texts`` at one layer."""
        layer, pooling = self.resolve_site(layer, pooling)
        return self.encode_layers(texts, [layer], pooling, batch_size=batch_size,
                                  progress=progress)[layer]

    def encode_layers(self, texts: Sequence[str], layers: Sequence[int],
                      pooling: str | None = None, batch_size: int = 32,
                      progress: bool | None = None) -> dict[int, torch.Tensor]:
        """Pooled features at several layers, computed in ONE forward pass per batch.

        Layers found in the cache are not recomputed; if all are cached the model is not loaded.
        """
        texts = check_texts(texts)
        if batch_size < 1:
            raise XSteerError(f"batch_size must be >= 1, got {batch_size}")
        resolved = [self.resolve_site(layer, pooling) for layer in layers]
        if not resolved:
            raise XSteerError("encode_layers needs at least one layer")
        pooling = resolved[0][1]
        wanted = list(dict.fromkeys(layer for layer, _ in resolved))
        out: dict[int, torch.Tensor] = {}
        if not texts:
            return {layer: torch.zeros(0, self.dim) for layer in wanted}
        keys: dict[int, str] = {}
        if self.cache is not None:
            for layer in wanted:
                keys[layer] = self.cache.key(self.model_id, self.revision, layer, pooling,
                                             self.drop_bos, texts, **self.cache_settings())
                hit = self.cache.get(keys[layer], n=len(texts), dim=self.dim)
                if hit is not None:
                    out[layer] = hit
        missing = [layer for layer in wanted if layer not in out]
        if missing:
            computed = self._compute(texts, missing, pooling, batch_size, progress)
            for layer in missing:
                out[layer] = computed[layer]
                if self.cache is not None:
                    self.cache.put(keys[layer], computed[layer],
                                   meta=encoder_meta(self, layer, pooling) | {"n": len(texts)})
        return {layer: out[layer] for layer in wanted}

    @abstractmethod
    def _compute(self, texts: list[str], layers: list[int], pooling: str, batch_size: int,
                 progress: bool | None) -> dict[int, torch.Tensor]:
        """Run the model: pooled float32 CPU features for each layer, rows in input order."""

    @abstractmethod
    def encode_tokens(self, texts: Sequence[str], layer: int | None = None,
                      max_length: int = 77, batch_size: int = 32,
                      progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states ``(n, max_length, dim)`` and the pooled-token mask ``(n, max_length)``.

        ``xsteer.tensors.masked_mean(states, mask)`` equals ``encode(texts, layer, "mean")`` for
        texts that fit in ``max_length``: the mask marks exactly the tokens mean pooling uses.
        """


def encoder_meta(encoder: Encoder, layer: int | None = None,
                 pooling: str | None = None) -> dict[str, Any]:
    """Everything an artifact must record about where its features came from."""
    layer, pooling = encoder.resolve_site(layer, pooling)
    return {
        "model_id": encoder.model_id,
        "revision": encoder.revision,
        "layer": layer,
        "pooling": pooling,
        "site": encoder.site(layer, pooling),
        "drop_bos": encoder.drop_bos,
        "dim": encoder.dim,
        "num_layers": encoder.num_layers,
        "config_sha": config_digest(getattr(encoder, "config", None)),
        **encoder.cache_settings(),
    }

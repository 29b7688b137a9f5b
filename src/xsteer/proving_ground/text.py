"""Text conditioning for the proving ground: token states of a frozen, real text encoder.

The generator cross-attends to ``encode_tokens`` states of `xsteer.encoders` (default
all-MiniLM-L6-v2, last layer; Gemma-3-270M or any HF encoder works too). Training reads them once
from an on-disk cache, so the encoder never runs inside the training loop.

Anything with ``encode_tokens(texts, max_length=...) -> (states, mask)``, ``dim`` and ``model_id``
can stand in for an encoder (tests pass a tiny one built in code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch

from xsteer.site import Site


class TokenEncoder(Protocol):
    model_id: str
    dim: int

    def encode_tokens(self, texts: Any, layer: int | None = None, max_length: int = 77,
                      batch_size: int = 32,
                      progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...


def proving_ground_dir() -> Path:
    """Where trained generators, judges and caches live: ``<xsteer cache>/proving_ground``."""
    from xsteer.models.registry import cache_dir

    return cache_dir() / "proving_ground"


def load_encoder(name: str, layer: int | None = None) -> TokenEncoder:
    """The real encoder for ``name`` (an alias such as ``all-minilm-l6-v2``, a folder or hub id)."""
    from xsteer.encoders import get_encoder

    kw: dict[str, Any] = {} if layer is None else {"default_layer": layer}
    return get_encoder(name, cache=False, **kw)


def encode(encoder: TokenEncoder, texts: list[str], max_length: int,
           layer: int | None = None, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states ``(n, max_length, dim)`` float32 and mask ``(n, max_length)`` bool."""
    states, mask = encoder.encode_tokens(texts, layer=layer, max_length=max_length,
                                         batch_size=64, progress=progress)
    return states.float(), mask.bool()


def site_of(encoder: TokenEncoder, layer: int | None) -> str:
    """The pooled site a `Direction` must live at to steer this conditioning."""
    site = getattr(encoder, "site", None)
    return str(site(layer, "mean")) if callable(site) else str(Site("tokens", pooling="mean"))


class PipelineTokens:
    """A `ProvingGroundPipeline`'s own prompt encoding as a `TokenEncoder`: training data and
    evaluation read exactly the states the pipeline feeds its denoiser."""

    def __init__(self, pipe: Any, model_id: str) -> None:
        self.pipe, self.model_id = pipe, model_id
        self.dim = int(pipe.text_dim)

    def encode_tokens(self, texts: Any, layer: int | None = None, max_length: int = 77,
                      batch_size: int = 32,
                      progress: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        from tqdm.auto import tqdm

        from xsteer.errors import XSteerError

        want = int(self.pipe.config.max_length)
        if max_length != want or layer is not None:
            raise XSteerError(f"the pipeline reads its encoder's last layer at {want} tokens; "
                              f"asked for layer {layer} at {max_length}")
        texts = list(texts)
        out = [self.pipe.encode_prompt(texts[s:s + batch_size], device="cpu")
               for s in tqdm(range(0, len(texts), batch_size), desc=f"tokens {self.model_id}",
                             disable=not progress)]
        return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])

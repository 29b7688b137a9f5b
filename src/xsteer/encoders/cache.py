"""On-disk cache of pooled embeddings, keyed by model, revision, site and the exact texts.

Extracting features from a source LM is the slow step of every experiment (Gemma: ~17 ms per
prompt on 2 cores), and the same prompts are encoded again and again across sweeps. One
safetensors file per (model, revision, layer, pooling, drop_bos, texts) holds the ``(n, dim)``
float32 result; it is written atomically, so a crash never leaves a half file under a valid name,
and a file that fails to load or validate is treated as a miss and overwritten.

>>> import tempfile, torch
>>> c = EmbeddingCache(tempfile.mkdtemp())
>>> k = c.key("m", None, 3, "mean", False, ["a", "b"])
>>> _ = c.put(k, torch.ones(2, 4))
>>> c.get(k, n=2, dim=4).shape
torch.Size([2, 4])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from xsteer.io import atomic_write_bytes, hash_texts

log = logging.getLogger(__name__)

TENSOR_KEY = "embeddings"


class EmbeddingCache:
    """A directory of cached embeddings (default ``cache_dir()/"embeddings"``)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:
            from xsteer.models import cache_dir

            root = cache_dir() / "embeddings"
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"EmbeddingCache(root={str(self.root)!r})"

    @staticmethod
    def key(model_id: str, revision: str | None, layer: int, pooling: str, drop_bos: bool,
            texts: Sequence[str], **extra: Any) -> str:
        """SHA-256 over everything that changes the result; ``extra`` adds encoder settings."""
        fields = {"model_id": model_id, "revision": revision, "layer": int(layer),
                  "pooling": pooling, "drop_bos": bool(drop_bos), "texts": hash_texts(texts),
                  **extra}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str, n: int, dim: int) -> torch.Tensor | None:
        """The cached ``(n, dim)`` tensor, or None on a miss or an unreadable/invalid file."""
        from safetensors.torch import load

        path = self.path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            data = path.read_bytes()
            t = load(data)[TENSOR_KEY]
            if t.shape != (n, dim) or t.dtype != torch.float32 or not torch.isfinite(t).all():
                raise ValueError(f"holds {tuple(t.shape)} {t.dtype}, expected ({n}, {dim}) "
                                 "finite float32")
            recorded = _header_metadata(data).get("tensor_sha256")
            if recorded != _digest(t):  # flipped bits that still parse as finite floats
                raise ValueError("tensor checksum does not match its header")
        except Exception as exc:  # any corruption is a miss: recompute, never crash
            log.warning("xsteer: ignoring corrupt embedding cache file %s (%s); recomputing",
                        path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return t

    def put(self, key: str, tensor: torch.Tensor, meta: dict[str, Any] | None = None) -> Path:
        """Store ``tensor`` under ``key`` atomically (safetensors; ``meta`` goes in its header)."""
        from safetensors.torch import save

        t = tensor.detach().to("cpu", torch.float32).contiguous()
        header = {k: str(v) for k, v in (meta or {}).items()}
        header["tensor_sha256"] = _digest(t)
        path = self.path(key)
        atomic_write_bytes(path, save({TENSOR_KEY: t}, metadata=header))
        return path

    def clear(self) -> int:
        """Delete every cached file; returns how many were removed."""
        removed = 0
        for f in self.root.glob("*/*.safetensors"):
            f.unlink()
            removed += 1
        return removed


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.numpy().tobytes()).hexdigest()


def _header_metadata(data: bytes) -> dict[str, str]:
    """The string metadata of a safetensors buffer (its JSON header's ``__metadata__``)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}

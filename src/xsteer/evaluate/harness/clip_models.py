"""CLIP for judges and CLIP score: loading (HF id, folder, or the ``tiny-clip`` alias) and features.

`ClipFeatures` wraps a transformers ``CLIPModel`` so ``get_image_features``/``get_text_features``
return plain tensors. transformers 5 returns a ``BaseModelOutputWithPooling`` (projected features
in ``pooler_output``) where torchmetrics 1.9's CLIPScore expects a tensor, so without the wrapper
CLIPScore fails on transformers 5.

>>> feats, processor = load_clip("tiny-clip")
>>> tuple(feats.text_features(["a cat"]).shape)
(1, 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

DEFAULT_CLIP = "openai/clip-vit-large-patch14"


def _tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    raise TypeError(f"unexpected CLIP feature output {type(out).__name__}")


class ClipFeatures(nn.Module):
    """A ``CLIPModel`` whose feature methods return tensors; keeps ``config`` for torchmetrics."""

    def __init__(self, model: Any, processor: Any) -> None:
        super().__init__()
        self.model = model
        self.processor = processor
        self.config = model.config

    def get_image_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return _tensor(self.model.get_image_features(*args, **kwargs))

    def get_text_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return _tensor(self.model.get_text_features(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def image_features(self, images: Sequence[Any]) -> torch.Tensor:
        """L2-normalised image features of PIL images, ``(n, proj)``."""
        arrays = [np.asarray(im.convert("RGB")) for im in images]
        px = self.processor(images=arrays, return_tensors="pt")["pixel_values"].to(self.device)
        f = self.get_image_features(pixel_values=px).float()
        return f / f.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised text features, ``(n, proj)`` (truncated to the model's context)."""
        tok = self.processor.tokenizer(list(texts), padding=True, truncation=True,
                                       max_length=self.config.text_config.max_position_embeddings,
                                       return_tensors="pt")
        f = self.get_text_features(input_ids=tok["input_ids"].to(self.device),
                                   attention_mask=tok["attention_mask"].to(self.device)).float()
        return f / f.norm(dim=-1, keepdim=True)


@lru_cache(maxsize=4)
def load_clip(name: str = DEFAULT_CLIP, device: str = "cpu") -> tuple[ClipFeatures, Any]:
    """(features, processor) for a CLIP: ``tiny-clip`` (random, offline), an HF id, or a folder."""
    if name == "tiny-clip":
        from xsteer.pipelines.tiny import tiny_clip

        model, processor = tiny_clip()
    else:
        from transformers import CLIPModel, CLIPProcessor

        model = CLIPModel.from_pretrained(name).eval()
        processor = CLIPProcessor.from_pretrained(name)
    feats = ClipFeatures(model.to(device), processor).eval()
    return feats, processor

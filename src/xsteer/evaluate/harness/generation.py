"""Load a pipeline for a sweep and generate seeded images (or clips) from conditioning kwargs.

`PipelineRunner` is the one place that calls the pipeline: every method hands it the keyword
arguments for the positive prompt (``prompt_embeds`` ... from `xsteer.pipelines`' encode
adapters, steered or not) and it adds the per-sample generators, guidance, size and step count.
(Named so, not ``Generator``, to stay apart from ``torch.Generator``.) One CPU
``torch.Generator`` per sample seeded with the sample's seed makes each image depend on its seed
alone, not on its batch or on which process drew it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xsteer.errors import XSteerError


def resolve_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _to_pil(x: Any) -> Any:
    from PIL import Image

    if isinstance(x, Image.Image):
        return x
    arr = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    return Image.fromarray(arr)


def outputs_to_pil(out: Any, video: bool) -> list[Any]:
    """Pipeline output as PIL images (T2I) or lists of PIL frames (T2V), one entry per sample."""
    if video:
        frames = out.frames
        return [[_to_pil(f) for f in clip] for clip in frames]
    return [_to_pil(im) for im in out.images]


@dataclass
class PipelineRunner:
    """A pipeline plus the sweep's default generation settings.

    ``call_kwargs`` are passed on every call (e.g. ``num_frames`` for video, ``max_sequence_length``).
    """

    pipe: Any
    steps: int = 50
    guidance: float = 7.5
    height: int | None = None
    width: int | None = None
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = "pipeline"

    def __post_init__(self) -> None:
        from xsteer.pipelines import family_for

        self.family = family_for(self.pipe)
        self.video = self.family.draws_video(self.pipe)

    def encode(self, prompts: Sequence[str]) -> dict[str, Any]:
        """Unsteered positive-prompt kwargs from the family's encode adapter."""
        if self.family.encode is None:
            raise XSteerError(f"{type(self.pipe).__name__}: no encode adapter")
        with torch.no_grad():
            embeds, _ = self.family.encode(self.pipe, list(prompts), dict(self.call_kwargs))
        return embeds

    def token_mask(self, prompts: Sequence[str], length: int) -> torch.Tensor | None:
        """Real-token mask ``(n, length)`` from the default site's tokenizer, when one matches."""
        site = self.family.site(self.family.default_site)
        tok_name = site.component.replace("text_encoder", "tokenizer")
        tok = getattr(self.pipe, tok_name, None)
        if tok is None:
            return None
        enc = tok(list(prompts), padding="max_length", max_length=length, truncation=True,
                  return_tensors="pt")
        mask = enc.get("attention_mask")
        return None if mask is None or mask.shape[-1] != length else mask.bool()

    def settings(self) -> dict[str, Any]:
        return {"pipeline": self.name, "class": type(self.pipe).__name__,
                "family": self.family.name, "steps": self.steps, "guidance": self.guidance,
                "height": self.height, "width": self.width,
                "call_kwargs": {k: v for k, v in self.call_kwargs.items()
                                if isinstance(v, (int, float, str, bool))}}

    @torch.no_grad()
    def generate(self, conditioning: dict[str, Any], seeds: Sequence[int],
                 guidance: float | None = None, height: int | None = None,
                 width: int | None = None) -> list[Any]:
        """Images (or clips) for one batch; ``conditioning`` holds the positive-prompt kwargs."""
        gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        kwargs: dict[str, Any] = {**self.call_kwargs, **conditioning}
        kwargs.update(num_inference_steps=self.steps, generator=gens,
                      guidance_scale=self.guidance if guidance is None else guidance)
        h, w = height or self.height, width or self.width
        if h is not None:
            kwargs["height"] = int(h)
        if w is not None:
            kwargs["width"] = int(w)
        if not self.video:
            kwargs.setdefault("output_type", "pil")
        out = self.pipe(**kwargs)
        result = outputs_to_pil(out, self.video)
        if len(result) != len(seeds):
            raise XSteerError(f"pipeline returned {len(result)} outputs for {len(seeds)} seeds")
        return result

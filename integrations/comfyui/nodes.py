"""ComfyUI nodes: "xsteer Safety Adapter" (CONDITIONING in, CONDITIONING out) and "xsteer Gate"
(each category's decision).

ComfyUI's conditioning is a list of ``[tensor (1, L, D), {"pooled_output": tensor, ...}]``. The
adapter's site is one part of it, by encoder layout (`LAYOUTS`):

- FLUX: T5-XXL tokens are the whole tensor (site ``text_encoder_2``); CLIP-L pooled is
  ``pooled_output`` (site ``text_encoder.pooled``).
- SD3: CLIP-L/G tokens (zero-padded to 4096) come first, then the T5 tokens: site
  ``text_encoder_3`` is the tokens after the first ``token_offset`` (77 in ComfyUI); pooled is
  CLIP-L (768) then CLIP-G (1280).
- Wan 2.1/2.2: UMT5-XXL tokens, the whole tensor (site ``text_encoder``).
- Z-Image: Qwen3 hidden states, the whole tensor (site ``text_encoder``).

Real tokens: the dict's ``attention_mask`` when ComfyUI gives one, else every token row that is
not all zeros (encoders whose padding was zeroed, as Wan's), else all. The steering is
`xsteer.steer.Steering.apply` on that part — the same function the diffusers `Steerer` calls at the
encoder output — so prompts the gates do not flag pass through bit-identical.

This file imports only xsteer and torch, so the tests run without ComfyUI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from xsteer.pipelines.adapter import Adapter, load_adapter
from xsteer.steer import Steering


@dataclass(frozen=True)
class Part:
    """Where a site's states sit in ComfyUI's conditioning: the token tensor or the pooled one,
    from ``start`` to ``stop`` along tokens (``tokens``) or features (``pooled``)."""

    slot: str  # "tokens" or "pooled"
    start: int = 0
    stop: int | None = None


LAYOUTS: dict[str, dict[str, Part]] = {
    "flux": {"text_encoder_2": Part("tokens"), "text_encoder.pooled": Part("pooled")},
    "sd3": {"text_encoder_3": Part("tokens", start=77),
            "text_encoder.pooled": Part("pooled", 0, 768),
            "text_encoder_2.pooled": Part("pooled", 768, 2048)},
    "wan": {"text_encoder": Part("tokens")},
    "z-image": {"text_encoder": Part("tokens")},
}
ENCODERS = tuple(LAYOUTS)


def part_for(encoder: str, site: str, token_offset: int = -1) -> Part:
    """The `Part` of ``encoder``'s conditioning that ``site`` is (``token_offset`` >= 0 moves
    where the tokens of a token site start, e.g. SD3 with another CLIP length)."""
    if encoder not in LAYOUTS:
        raise ValueError(f"unknown encoder layout {encoder!r}; known: {', '.join(ENCODERS)}")
    parts = LAYOUTS[encoder]
    if site not in parts:
        raise ValueError(f"an adapter for site {site!r} does not fit {encoder} conditioning "
                         f"(its sites: {sorted(parts)})")
    p = parts[site]
    if token_offset >= 0 and p.slot == "tokens":
        p = Part("tokens", token_offset, p.stop)
    return p


def real_tokens(states: torch.Tensor, extra: dict[str, Any]) -> torch.Tensor | None:
    """The real-token mask ``(1, L)``, or None when every token is real (see the module)."""
    mask = extra.get("attention_mask")
    if isinstance(mask, torch.Tensor) and tuple(mask.shape) == tuple(states.shape[:2]):
        return mask.bool()
    nonzero = states.abs().amax(dim=-1) > 0
    return None if bool(nonzero.all()) else nonzero


def steer_entry(entry: list[Any], steering: Steering, part: Part,
                source: dict[str, torch.Tensor] | None = None) -> tuple[list[Any],
                                                                         dict[str, bool]]:
    """One ``[tensor, dict]`` conditioning entry steered at ``part``; and the gate decisions
    (``source``: a source-side gate's decisions for the entry's prompt)."""
    cond, extra = entry[0], dict(entry[1])
    if part.slot == "pooled":
        pooled = extra.get("pooled_output")
        if not isinstance(pooled, torch.Tensor):
            raise ValueError("this conditioning has no pooled_output to steer")
        piece = pooled[..., part.start:part.stop]
        new, dec = steering.apply(piece, source=source)
        if new is not piece:
            pooled = pooled.clone()
            pooled[..., part.start:part.stop] = new
            extra["pooled_output"] = pooled
        return [cond, extra], {c: bool(v[0]) for c, v in dec.items()}
    piece = cond[:, part.start:part.stop]
    new, dec = steering.apply(piece, real_tokens(piece, extra), source=source)
    if new is not piece and bool(torch.stack(list(dec.values())).any()):
        cond = cond.clone()
        cond[:, part.start:part.stop] = new
    return [cond, extra], {c: bool(v[0]) for c, v in dec.items()}


def steer_conditioning(conditioning: list[list[Any]], adapter: Adapter, encoder: str,
                       strength: float | None = None, token_offset: int = -1,
                       prompt: str | None = None,
                       ) -> tuple[list[list[Any]], list[dict[str, bool]]]:
    """Every entry of ComfyUI ``conditioning`` steered by ``adapter`` (the input is not changed).
    An adapter whose source-side gate decides needs the ``prompt`` text (the conditioning holds
    only its states)."""
    over = {} if strength is None else {"strength": float(strength)}
    steering = adapter.steering(**over)
    site = str(adapter.operator.get("site") or adapter.pipeline.get("site"))
    part = part_for(encoder, site, token_offset)
    source = None
    if steering.mode == "gated" and steering.combine != "target":
        if not prompt:
            raise ValueError("this adapter's source-side gate reads the prompt's text: connect "
                             "the prompt to the node's 'prompt' input")
        source = adapter.source_gate().decide([prompt], half=steering.combine == "or")
    out, decisions = [], []
    for entry in conditioning:
        steered, dec = steer_entry(entry, steering, part, source)
        out.append(steered)
        decisions.append(dec)
    return out, decisions


@lru_cache(maxsize=8)
def _adapter(path: str) -> Adapter:
    return load_adapter(path)


class SafetyAdapterNode:
    """xsteer Safety Adapter: steer CONDITIONING with an adapter folder (or Hub id)."""

    CATEGORY = "conditioning/xsteer"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "steer"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "conditioning": ("CONDITIONING",),
            "adapter": ("STRING", {"default": "", "multiline": False}),
            "encoder": (list(ENCODERS),),
            "strength": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 100.0, "step": 0.05,
                                   "tooltip": "-1: the adapter's own strength"}),
            "token_offset": ("INT", {"default": -1, "min": -1, "max": 4096,
                                     "tooltip": "-1: the layout's (SD3: 77 CLIP tokens)"}),
        }, "optional": {"prompt": ("STRING", {"multiline": True, "forceInput": True,
                                              "tooltip": "the prompt's text, for an adapter "
                                                         "whose source-side gate decides"})}}

    def steer(self, conditioning: list[list[Any]], adapter: str, encoder: str,
              strength: float = -1.0, token_offset: int = -1,
              prompt: str | None = None) -> tuple[list[list[Any]]]:
        out, _ = steer_conditioning(conditioning, _adapter(adapter), encoder,
                                    None if strength < 0 else strength, token_offset, prompt)
        return (out,)


class GateNode:
    """xsteer Gate: each category's gate decision for the first conditioning entry."""

    CATEGORY = "conditioning/xsteer"
    RETURN_TYPES = ("STRING", "BOOLEAN")
    RETURN_NAMES = ("decisions", "fires")
    FUNCTION = "decide"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"conditioning": ("CONDITIONING",),
                             "adapter": ("STRING", {"default": ""}),
                             "encoder": (list(ENCODERS),),
                             "token_offset": ("INT", {"default": -1, "min": -1, "max": 4096})},
                "optional": {"prompt": ("STRING", {"multiline": True, "forceInput": True})}}

    def decide(self, conditioning: list[list[Any]], adapter: str, encoder: str,
               token_offset: int = -1, prompt: str | None = None) -> tuple[str, bool]:
        _, decisions = steer_conditioning(conditioning, _adapter(adapter), encoder,
                                          token_offset=token_offset, prompt=prompt)
        first = decisions[0] if decisions else {}
        return json.dumps(first, sort_keys=True), any(first.values())


NODE_CLASS_MAPPINGS = {"XSteerSafetyAdapter": SafetyAdapterNode, "XSteerGate": GateNode}
NODE_DISPLAY_NAME_MAPPINGS = {"XSteerSafetyAdapter": "xsteer Safety Adapter",
                              "XSteerGate": "xsteer Gate"}

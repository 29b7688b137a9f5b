"""Token states of a pipeline site, as the steering hook sees them (for per-token thresholds).

`site_features` gives the masked-mean (gate) features; the ``tokens`` steering mode also needs a
benign per-token threshold, i.e. the states of every real token of BENIGN prompts at the site.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from xsteer.errors import XSteerError
from xsteer.pipelines.generic import family_for
from xsteer.pipelines.hooks import activate, encode_lock, prefix_of, read_site, token_mask


def site_token_states(pipe: Any, prompts: Sequence[str], site: str | None = None,
                      **call_kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(states (n, L, dim), real-token mask (n, L))`` of ``site`` (default: the family's
    default site) for ``prompts``, read by a capture-only hook during the pipeline's own encode
    of the positive prompt. Use it on BENIGN prompts only."""
    fam = family_for(pipe)
    if fam.encode is None:
        raise XSteerError(f"{type(pipe).__name__}: no encode adapter")
    spec = fam.site(site or fam.default_site)
    if spec.kind != "tokens":
        raise XSteerError(f"site {spec.name!r} is pooled: it has no per-token states")
    states: list[torch.Tensor] = []
    masks: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
             output: Any) -> None:
        s = read_site(output, spec)
        m = token_mask(args, kwargs, s, prefix_of(pipe, spec))
        states.append(s.detach().float().cpu())
        masks.append(torch.ones(s.shape[:2], dtype=torch.bool) if m is None
                     else m.bool().cpu())

    with encode_lock(pipe):
        handle = activate(spec.module(pipe), hook)
        try:
            with torch.no_grad():
                fam.encode(pipe, list(prompts), dict(call_kwargs))
        finally:
            handle.remove()
    if not states:
        raise XSteerError(f"site {spec.name!r} was not called while encoding the prompts")
    return torch.cat(states), torch.cat(masks)

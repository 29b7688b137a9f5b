"""Reversible forward hooks on text encoders: read a site's states, steer them, write them back.

A hook never touches weights or module attributes; it replaces one field of the encoder's output
(a fresh object per call) and is removed through the `RemovableHandle` torch returns, so removing
it restores the model exactly. Gate decisions are recorded per call so callers can report them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from xsteer.errors import XSteerError
from xsteer.pipelines.sites import SiteSpec, hooks_suspended
from xsteer.steer import Steering
from xsteer.tensors import masked_mean

Hook = Callable[[torch.nn.Module, tuple[Any, ...], dict[str, Any], Any], Any]


@dataclass
class CallRecord:
    """One steered encoder call: the site, the batch size and each category's gate decisions."""

    site: str
    n: int
    decisions: dict[str, list[bool]] = field(default_factory=dict)


def _is_mapping_output(output: Any) -> bool:
    # transformers' ModelOutput is an OrderedDict that also indexes by position
    return hasattr(output, "keys") and hasattr(output, "to_tuple")


def read_site(output: Any, site: SiteSpec) -> torch.Tensor:
    """The tensor ``site`` names inside an encoder ``output`` (ModelOutput or tuple)."""
    key, idx = site.field()
    try:
        if isinstance(key, str):
            val = output[key] if _is_mapping_output(output) else getattr(output, key)
        else:
            val = output[key]
        if idx is not None:
            val = val[idx]
    except (KeyError, AttributeError, IndexError, TypeError) as exc:
        raise XSteerError(
            f"site {site.name!r}: the output of {site.component} has no {site.output!r} "
            f"(got {type(output).__name__}); does the pipeline read another field? Pass a "
            "SiteSpec with the right output") from exc
    if not isinstance(val, torch.Tensor):
        raise XSteerError(f"site {site.name!r}: {site.output!r} is a {type(val).__name__}, "
                          "not a tensor")
    return val


def write_site(output: Any, site: SiteSpec, new: torch.Tensor) -> Any:
    """Return ``output`` with the site's tensor replaced by ``new`` (other fields untouched)."""
    key, idx = site.field()
    if _is_mapping_output(output):
        name = key if isinstance(key, str) else list(output.keys())[key]
        if idx is None:
            output[name] = new
        else:
            items = list(output[name])
            items[idx] = new
            output[name] = tuple(items)
        return output
    if isinstance(output, tuple) and isinstance(key, int):
        items = list(output)
        if idx is None:
            items[key] = new
        else:
            inner = list(items[key])
            inner[idx] = new
            items[key] = tuple(inner)
        return tuple(items)
    raise XSteerError(f"site {site.name!r}: cannot write {site.output!r} into a "
                      f"{type(output).__name__}")


def token_mask(args: tuple[Any, ...], kwargs: dict[str, Any], states: torch.Tensor,
               prefix: int = 0) -> torch.Tensor | None:
    """The real-token mask ``(n, L)`` of an encoder call, or None when it got none.

    The attention mask is found by keyword or as the second positional argument (CLIP, T5, UMT5
    and Qwen2 encoders all take ``(input_ids, attention_mask, ...)``). ``prefix`` leading
    positions (a chat template the pipeline drops) are masked out.
    """
    mask = kwargs.get("attention_mask")
    if mask is None and len(args) > 1 and isinstance(args[1], torch.Tensor):
        mask = args[1]
    n_l = tuple(states.shape[:2])
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != n_l:
        mask = None
    if prefix > 0:
        base = torch.ones(n_l, dtype=torch.bool, device=states.device) if mask is None \
            else mask.to(states.device).bool().clone()
        base[:, :prefix] = False
        return base
    return None if mask is None else mask.to(states.device)


def steering_hook(site: SiteSpec, steering: Steering, records: list[CallRecord],
                  prefix: int = 0) -> Hook:
    """A ``register_forward_hook(..., with_kwargs=True)`` hook that steers ``site``."""

    def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
             output: Any) -> Any:
        if hooks_suspended():
            return None
        states = read_site(output, site)
        mask = token_mask(args, kwargs, states, prefix) if site.kind == "tokens" else None
        new, dec = steering.apply(states, mask)
        records.append(CallRecord(site.name, int(states.shape[0]),
                                  {c: [bool(x) for x in v.tolist()] for c, v in dec.items()}))
        if new is states:
            return None  # strength 0: keep the original output object itself
        return write_site(output, site, new)

    return hook


def capture_hook(site: SiteSpec, store: list[torch.Tensor], prefix: int = 0) -> Hook:
    """A hook that records the site's masked-mean (gate) features without changing anything."""

    def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
             output: Any) -> None:
        if hooks_suspended():
            return
        states = read_site(output, site)
        mask = token_mask(args, kwargs, states, prefix) if site.kind == "tokens" else None
        store.append(masked_mean(states.detach(), mask).float().cpu())

    return hook


def prefix_of(pipe: Any, site: SiteSpec) -> int:
    """How many leading template tokens the pipeline drops for ``site`` (0 when none)."""
    if site.prefix_attr is None:
        return 0
    return int(getattr(pipe, site.prefix_attr, 0) or 0)

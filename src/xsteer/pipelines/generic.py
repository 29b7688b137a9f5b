"""The generic adapter: steer a pipeline the site table does not know, from its own API.

Any diffusers pipeline whose ``__call__`` takes ``prompt_embeds`` and which has an
``encode_prompt`` can be steered without a table entry. `generic_family` finds its sites by
observation: it runs ``encode_prompt`` once on a probe prompt with capture hooks on every
``text_encoder*`` component and matches the ``prompt_embeds`` (and ``pooled_prompt_embeds``)
the pipeline returns against each encoder output field (``last_hidden_state``,
``hidden_states[-k]``, ``pooler_output``, ``text_embeds``). A field that equals what the
pipeline hands its denoiser is a site, read exactly as the pipeline reads it. Pipelines that
concatenate or crop encoder states (where no field matches) need a table entry.

`family_for` is the one lookup everyone uses: the table (`xsteer.pipelines.families.FAMILIES`)
first, then the generic adapter (discovery is cached per pipeline object).

>>> generic_support(type("NoEncode", (), {"__call__": lambda self, prompt_embeds=None: 0}))
(False, 'no encode_prompt method')
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

import torch

from xsteer.pipelines.families import (
    Family,
    SiteSpec,
    UnknownPipelineError,
    call_default,
    table_family,
)
from xsteer.pipelines.hooks import read_site

PROBE = "a photo of a cat on a red sofa"
_CACHE: weakref.WeakKeyDictionary[Any, Family] = weakref.WeakKeyDictionary()
_TOKEN_FIELDS = ("last_hidden_state", "hidden_states[-1]", "hidden_states[-2]",
                 "hidden_states[-3]", "0")
_POOLED_FIELDS = ("pooler_output", "text_embeds")
_MASK_NAMES = ("prompt_attention_mask", "prompt_embeds_mask", "attention_mask")


def generic_support(cls: type) -> tuple[bool, str]:
    """Whether the generic adapter can drive pipeline class ``cls``, and why not."""
    if not callable(getattr(cls, "encode_prompt", None)):
        return False, "no encode_prompt method"
    call = getattr(cls, "__call__", None)  # noqa: B004 - the class attribute, not callability
    params = inspect.signature(call).parameters if call is not None else {}
    if "prompt_embeds" not in params:
        return False, "__call__ takes no prompt_embeds"
    return True, "encode_prompt + prompt_embeds"


def encode_generic(pipe: Any, prompts: list[str],
                   kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Call ``encode_prompt`` for the positive prompts alone and name what it returns after the
    ``__call__`` parameters it feeds (``prompt_embeds``, pooled embeds, the mask)."""
    sig = inspect.signature(pipe.encode_prompt).parameters
    args: dict[str, Any] = {"prompt": prompts} if "prompt" in sig else {}
    if "device" in sig:
        args["device"] = pipe._execution_device
    for flag, value in (("do_classifier_free_guidance", False), ("num_images_per_prompt", 1),
                        ("num_videos_per_prompt", 1)):
        if flag in sig:
            args[flag] = value
    if "max_sequence_length" in sig:
        n = call_default(pipe, "max_sequence_length", kw)
        if n is not None:
            args["max_sequence_length"] = n
    out = pipe.encode_prompt(*([] if "prompt" in sig else [prompts]), **args)
    items = out if isinstance(out, (tuple, list)) else (out,)
    call = inspect.signature(type(pipe).__call__).parameters
    res: dict[str, Any] = {"prompt_embeds": items[0]}
    for t in items[1:]:
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[0] != len(prompts):
            continue
        name: str | None
        if not torch.is_floating_point(t):
            name = next((m for m in _MASK_NAMES if m in call), None)
        else:
            name = "pooled_prompt_embeds" if "pooled_prompt_embeds" in call else None
        if name is not None and name not in res:
            res[name] = t
    return res, set()


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.float().cpu(), b.float().cpu(), atol=1e-5,
                                                 rtol=1e-4)


def discover_sites(pipe: Any) -> list[SiteSpec]:
    """The sites of ``pipe`` found by matching its ``encode_prompt`` outputs to encoder fields."""
    comps = {k: v for k, v in getattr(pipe, "components", {}).items()
             if k.startswith("text_encoder") and isinstance(v, torch.nn.Module)}
    seen: dict[str, list[Any]] = {k: [] for k in comps}
    hooks = [m.register_forward_hook(lambda mod, a, kw, out, k=k: seen[k].append(out),
                                     with_kwargs=True) for k, m in comps.items()]
    try:
        with torch.no_grad():
            embeds, _ = encode_generic(pipe, [PROBE], {})
    finally:
        for h in hooks:
            h.remove()
    found: list[SiteSpec] = []
    pe, pooled = embeds.get("prompt_embeds"), embeds.get("pooled_prompt_embeds")
    for comp, outs in seen.items():
        if not outs:
            continue
        for want, fields, kind in ((pe, _TOKEN_FIELDS, "tokens"),
                                   (pooled, _POOLED_FIELDS, "pooled")):
            if not isinstance(want, torch.Tensor):
                continue
            for f in fields:
                spec = SiteSpec(comp if kind == "tokens" else f"{comp}.pooled", comp, f, kind,
                                ("hidden_size", "d_model", "text_config.hidden_size",
                                 "projection_dim"))
                try:
                    got = read_site(outs[0], spec)
                except Exception:  # the field does not exist in this output: try the next
                    continue
                if _same(got, want):
                    found.append(spec)
                    break
    return found


def generic_family(pipe: Any) -> Family:
    """A `Family` for a pipeline outside the table, by `discover_sites` (cached per object)."""
    if pipe in _CACHE:
        return _CACHE[pipe]
    cls = type(pipe)
    ok, why = generic_support(cls)
    if not ok:
        raise UnknownPipelineError(f"no site table for {cls.__name__} and the generic adapter "
                                   f"cannot drive it ({why}); pass sites=[SiteSpec(...)] by hand")
    from xsteer.pipelines.hooks import encode_lock

    with encode_lock(pipe):  # discovery runs encode_prompt with temporary hooks: one at a time
        sites = discover_sites(pipe)
    if not sites:
        raise UnknownPipelineError(
            f"{cls.__name__}: no text-encoder output equals the prompt_embeds its encode_prompt "
            "returns (it crops, concatenates or projects them); pass sites=[SiteSpec(...)]")
    tokens = [s for s in sites if s.kind == "tokens"]
    video = "num_frames" in inspect.signature(cls.__call__).parameters
    fam = Family(f"generic:{cls.__name__}", (cls.__name__,), tuple(sites),
                 (tokens or sites)[0].name, video=video, encode=encode_generic)
    _CACHE[pipe] = fam
    return fam


def family_for(pipe: Any) -> Family:
    """The site table's entry for ``pipe``'s class, else the generic adapter's family."""
    try:
        return table_family(pipe)
    except UnknownPipelineError as table_miss:
        try:
            return generic_family(pipe)
        except UnknownPipelineError as exc:
            raise UnknownPipelineError(f"{table_miss}. {exc}") from exc

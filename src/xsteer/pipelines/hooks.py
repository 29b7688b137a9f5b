"""Reversible forward hooks on text encoders: read a site's states, steer them, write them back.

A hook never touches weights or module attributes; it replaces one field of the encoder's output
(a fresh object per call). Gate decisions are recorded per call so callers can report them.

Hooks are scoped to the caller's context (its thread, or asyncio task): `activate` puts a hook in
a `contextvars.ContextVar`, and one dispatcher hook per module, installed while any context has a
hook active on it and removed with the last one, runs the hooks of the context that called the
module. So threads sharing one pipeline never see each other's steering, and registering or
removing a hook never mutates torch's hook dicts while another thread's forward reads them (the
race a per-call ``register_forward_hook`` had).
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from xsteer.errors import XSteerError
from xsteer.pipelines.families import SiteSpec, hooks_suspended
from xsteer.steer import Steering
from xsteer.tensors import masked_mean

Hook = Callable[[torch.nn.Module, tuple[Any, ...], dict[str, Any], Any], Any]


@dataclass
class CallRecord:
    """One steered encoder call: the site, the batch size and each category's gate decisions."""

    site: str
    n: int
    decisions: dict[str, list[bool]] = field(default_factory=dict)
    texts: list[str] | None = None  # what a source-side gate read, when one decided


# Decides a call for a source-side gate: (args, kwargs, batch size) -> per-category decisions and
# the texts read, or None when the call is not the positive prompt's (left untouched).
SourceDecide = Callable[[tuple[Any, ...], dict[str, Any], int],
                        "tuple[dict[str, torch.Tensor], list[str]] | None"]


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
                  prefix: int = 0, source: SourceDecide | None = None) -> Hook:
    """A ``register_forward_hook(..., with_kwargs=True)`` hook that steers ``site``.

    ``source``: a source-side gate's decider; calls it returns None for (negative-branch
    encodes) pass through untouched and unrecorded."""

    def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
             output: Any) -> Any:
        states = read_site(output, site)
        texts = None
        ext = None
        if source is not None:
            got = source(args, kwargs, int(states.shape[0]))
            if got is None:
                return None
            ext, texts = got
        mask = token_mask(args, kwargs, states, prefix) if site.kind == "tokens" else None
        new, dec = steering.apply(states, mask, source=ext)
        records.append(CallRecord(site.name, int(states.shape[0]),
                                  {c: [bool(x) for x in v.tolist()] for c, v in dec.items()},
                                  texts))
        if new is states:
            return None  # strength 0: keep the original output object itself
        return write_site(output, site, new)

    return hook


def capture_hook(site: SiteSpec, store: list[torch.Tensor], prefix: int = 0) -> Hook:
    """A hook that records the site's masked-mean (gate) features without changing anything."""

    def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
             output: Any) -> None:
        states = read_site(output, site)
        mask = token_mask(args, kwargs, states, prefix) if site.kind == "tokens" else None
        store.append(masked_mean(states.detach(), mask).float().cpu())

    return hook


@dataclass(eq=False)
class _Entry:
    module: torch.nn.Module
    hook: Hook
    alive: bool = True


# The hooks active in this context, in activation order. A tuple, replaced (never mutated), so a
# context copied into another thread or task holds a snapshot; `alive` turns off removed entries
# in such copies too.
_ACTIVE: contextvars.ContextVar[tuple[_Entry, ...]] = contextvars.ContextVar(
    "xsteer_active_hooks", default=())
_LOCK = threading.Lock()
# module -> [torch handle of its dispatcher, number of live entries on it]
_DISPATCHERS: weakref.WeakKeyDictionary[torch.nn.Module, list[Any]] = weakref.WeakKeyDictionary()


def _dispatch(module: torch.nn.Module, args: tuple[Any, ...], *rest: Any) -> Any:
    if hooks_suspended():  # `sites.unsteered`: every xsteer hook passes outputs through
        return None
    entries = [e for e in _ACTIVE.get() if e.module is module and e.alive]
    if not entries:
        return None
    # torch passes kwargs only while the hook is registered with_kwargs; a forward that read the
    # hook dict just before the last user removed the dispatcher calls it without them
    kwargs, output = rest if len(rest) == 2 else ({}, rest[-1])
    changed = False
    for e in entries:
        res = e.hook(module, args, kwargs, output)
        if res is not None:
            output, changed = res, True
    return output if changed else None


class HookHandle:
    """What `activate` returns: ``remove()`` turns the hook off (idempotent, from any thread)."""

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    def remove(self) -> None:
        e = self._entry
        with _LOCK:
            if not e.alive:
                return
            e.alive = False
            slot = _DISPATCHERS.get(e.module)
            if slot is not None:
                slot[1] -= 1
                if slot[1] == 0:
                    slot[0].remove()
                    del _DISPATCHERS[e.module]
        _ACTIVE.set(tuple(x for x in _ACTIVE.get() if x is not e))


def activate(module: torch.nn.Module, hook: Hook) -> HookHandle:
    """Run ``hook`` (a with-kwargs forward hook) on ``module``'s calls made in this context only.

    The context is the calling thread (or asyncio task; `asyncio.to_thread` copies it along).
    Calls of ``module`` from other threads do not see the hook. Undo with ``.remove()``.
    """
    entry = _Entry(module, hook)
    with _LOCK:
        slot = _DISPATCHERS.get(module)
        if slot is None:
            slot = [module.register_forward_hook(_dispatch, with_kwargs=True), 0]
            _DISPATCHERS[module] = slot
        slot[1] += 1
    _ACTIVE.set((*_ACTIVE.get(), entry))
    return HookHandle(entry)


def prefix_of(pipe: Any, site: SiteSpec) -> int:
    """How many leading template tokens the pipeline drops for ``site`` (0 when none)."""
    if site.prefix_attr is None:
        return 0
    return int(getattr(pipe, site.prefix_attr, 0) or 0)


_PIPE_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()


def encode_lock(pipe: Any) -> threading.RLock:
    """The lock xsteer holds while it encodes prompts with ``pipe`` (one per pipeline, re-entrant).

    A diffusers pipeline's tokenizers keep their padding/truncation settings in shared state that
    each call rewrites, so two threads encoding with one pipeline at once can get each other's
    padding (diffusers' own server example locks its tokenizers for this reason). `Steerer.encode`
    and `site_features` hold this lock; a server that also encodes unsteered prompts with the same
    pipeline should hold it too: ``with encode_lock(pipe): pipe.encode_prompt(...)``.
    """
    with _LOCK:
        lock = _PIPE_LOCKS.get(pipe)
        if lock is None:
            lock = _PIPE_LOCKS[pipe] = threading.RLock()
        return lock

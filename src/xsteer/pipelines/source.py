"""How a prompt's text reaches a source-side gate while a pipeline encodes it.

A text encoder's forward hook sees token ids, not text. The text reaches the gate in one of two
ways, per encoder call:

1. **Exact text** — `Steerer.encode` / `Steerer.generate` (the ``prompt_embeds`` path, and
   ``branch="both"``) put the positive prompts in a context variable (`given_prompts`) for the
   duration of the encode; a call whose batch size matches reads them as given.
2. **Decoded text** — under ``with steerer.apply(pipe): pipe(prompt=[...])`` the hook decodes the
   call's ``input_ids`` with the site's own tokenizer (``text_encoder_2`` → ``tokenizer_2``,
   special tokens dropped): the gate reads what the encoder read, truncation and a CLIP
   tokenizer's lower-casing included.

Only the positive prompt's encode is steered. Every diffusers pipeline encodes the positive
prompt before the negative one, and each denoising loop runs between two pipeline calls, so the
first call of each site after `patch` or after any denoiser forward is the positive prompt; later
calls (the negative or unconditional branch) pass through untouched. A pipeline without a
denoiser loaded (text side only) has every call read as positive.

Decisions are cached per text for the life of the handle, so a pipeline with two steered sites
(FLUX: CLIP pooled and T5 tokens) runs the source model once per prompt.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from xsteer.errors import XSteerError
from xsteer.pipelines.families import SiteSpec
from xsteer.pipelines.hooks import HookHandle, activate
from xsteer.steer.source_gate import SourceGate

DENOISERS = ("transformer", "transformer_2", "unet", "prior", "decoder")

_GIVEN: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "xsteer_given_prompts", default=None)


@contextlib.contextmanager
def given_prompts(prompts: Sequence[str]) -> Iterator[None]:
    """Hand the exact positive prompts to source-side gates for encodes in this block."""
    token = _GIVEN.set(tuple(prompts))
    try:
        yield
    finally:
        _GIVEN.reset(token)


def tokenizer_for(pipe: Any, site: SiteSpec) -> Any:
    """The tokenizer that feeds ``site``'s encoder (``text_encoder_N`` → ``tokenizer_N``)."""
    name = site.component.replace("text_encoder", "tokenizer", 1)
    tok = getattr(pipe, name, None) if name != site.component else None
    if tok is None:
        tok = getattr(pipe, "tokenizer", None)
    return tok


def _input_ids(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    ids = kwargs.get("input_ids")
    if ids is None and args and isinstance(args[0], torch.Tensor):
        ids = args[0]
    return ids if isinstance(ids, torch.Tensor) and ids.dtype in (torch.long, torch.int) else None


class SourceDecider:
    """Per `Steerer.patch` handle: texts of each positive encoder call → per-category decisions.

    Args:
        gate: the loaded `SourceGate`.
        pipe: the pipeline being steered (for tokenizers and the denoiser).
        half: use the probe's ``(q/2, delta/2)`` threshold (an OR with target gates).
    """

    def __init__(self, gate: SourceGate, pipe: Any, half: bool = False) -> None:
        self.gate, self.pipe, self.half = gate, pipe, half
        self._seen: set[str] = set()
        self._cache: dict[str, dict[str, bool]] = {}
        self._lock = threading.Lock()

    def reset(self, *_: Any) -> None:
        """A denoiser ran: the next encode of each site is a new call's positive prompt."""
        with self._lock:
            self._seen.clear()

    def denoiser_hooks(self) -> list[HookHandle]:
        """Context-scoped hooks that call `reset` after every denoiser forward."""
        out = []
        for name in DENOISERS:
            mod = getattr(self.pipe, name, None)
            if isinstance(mod, torch.nn.Module):
                out.append(activate(mod, lambda *a: self.reset()))
        return out

    def texts(self, site: SiteSpec, args: tuple[Any, ...], kwargs: dict[str, Any],
              n: int) -> list[str]:
        given = _GIVEN.get()
        if given is not None and len(given) == n:
            return list(given)
        ids = _input_ids(args, kwargs)
        tok = tokenizer_for(self.pipe, site)
        if ids is None or tok is None:
            raise XSteerError(f"site {site.name!r}: the source-side gate cannot read the prompt's "
                              "text from this encoder call (no input_ids or no tokenizer); use "
                              "Steerer.generate / Steerer.encode, which hand it the text")
        return [str(t) for t in tok.batch_decode(ids.cpu(), skip_special_tokens=True)]

    def decide_texts(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Per category, a boolean ``(n,)`` for ``texts`` (cached per text)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            dec = self.gate.decide(todo, half=self.half)
            for i, t in enumerate(todo):
                self._cache[t] = {c: bool(v[i]) for c, v in dec.items()}
        names = self.gate.names
        return {c: torch.tensor([self._cache[t][c] for t in texts], dtype=torch.bool)
                for c in names}

    def for_site(self, site: SiteSpec) -> Any:
        """The ``source`` callable `steering_hook` takes for ``site``."""

        def decide(args: tuple[Any, ...], kwargs: dict[str, Any],
                   n: int) -> tuple[dict[str, torch.Tensor], list[str]] | None:
            with self._lock:
                if site.name in self._seen:
                    return None  # the negative / unconditional branch of this pipeline call
                self._seen.add(site.name)
            texts = self.texts(site, args, kwargs, n)
            return self.decide_texts(texts), texts

        return decide

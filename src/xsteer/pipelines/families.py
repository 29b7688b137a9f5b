"""Pipeline families (`Family`, `FAMILIES`) and their site tables (`SiteSpec`): where each diffusers
pipeline family reads its text conditioning.

A *site* is one output of one text encoder that a pipeline feeds its denoiser: token states
``(n, L, dim)`` (``prompt_embeds``) or a pooled vector ``(n, dim)`` (``pooled_prompt_embeds``). The
table says, per family, which component, which output field the pipeline reads (SDXL and SD3 read
the *penultimate* CLIP hidden state, FLUX the CLIP ``pooler_output``, Qwen-Image the LLM's last
hidden state after a chat template it later drops), and where the hidden size lives in the
component's config. A family also names an ``encode`` adapter: how to get the pipeline's own
``prompt_embeds`` (and pooled embeds) for the positive prompt alone, which the conditional-branch
path needs. Pipelines the table does not know can be steered by passing `SiteSpec` objects by hand.

>>> fam = FAMILIES["sdxl"]
>>> [s.name for s in fam.sites]
['text_encoder', 'text_encoder_2', 'text_encoder_2.pooled']
>>> fam.site("text_encoder_2.pooled").output
'text_embeds'
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from xsteer.errors import XSteerError

SITE_KINDS = ("tokens", "pooled")
_FIELD = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*|\d+)(?:\[(?P<index>-?\d+)\])?$")

# encode(pipe, prompts, call_kwargs) -> (pipeline kwargs for the positive prompt, consumed keys)
EncodeFn = Callable[[Any, list[str], dict[str, Any]], tuple[dict[str, Any], set[str]]]


class UnknownPipelineError(XSteerError, LookupError):
    """The site table has no entry for a pipeline class and no sites were given by hand."""


@dataclass(frozen=True)
class SiteSpec:
    """One steerable text-conditioning output of a pipeline.

    Attributes:
        name: how users address it (``"text_encoder_2"``, ``"text_encoder_2.pooled"``).
        component: the pipeline attribute holding the encoder module.
        output: the field of the encoder's output the pipeline reads: an attribute name
            (``last_hidden_state``, ``pooler_output``, ``text_embeds``), optionally indexed
            (``hidden_states[-2]``), or a tuple position (``0``) for ``return_dict=False`` outputs.
        kind: ``tokens`` (``(n, L, dim)``, masked by the encoder's attention mask when it gets
            one) or ``pooled`` (``(n, dim)``).
        dim_keys: config keys tried in order for the hidden size (dotted for nested configs).
        prefix_attr: a pipeline attribute giving a number of leading template tokens the pipeline
            drops after encoding; they are neither steered nor counted by the gate.
    """

    name: str
    component: str
    output: str = "last_hidden_state"
    kind: str = "tokens"
    dim_keys: tuple[str, ...] = ("hidden_size", "d_model")
    prefix_attr: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SITE_KINDS:
            raise XSteerError(f"site {self.name!r}: kind must be one of {SITE_KINDS}, "
                              f"got {self.kind!r}")
        if not _FIELD.match(self.output):
            raise XSteerError(f"site {self.name!r}: cannot parse output field {self.output!r} "
                              "(use 'name', 'name[i]' or a tuple index)")

    def field(self) -> tuple[str | int, int | None]:
        """``(attribute name or tuple position, optional index into it)``."""
        m = _FIELD.match(self.output)
        assert m is not None  # checked in __post_init__
        name = m.group("name")
        key: str | int = int(name) if name.isdigit() else name
        idx = m.group("index")
        return key, (int(idx) if idx is not None else None)

    def module(self, pipe: Any) -> Any:
        mod = getattr(pipe, self.component, None)
        if mod is None:
            raise XSteerError(f"site {self.name!r}: pipeline {type(pipe).__name__} has no "
                              f"component {self.component!r} (or it is None)")
        return mod

    def dim(self, pipe: Any) -> int:
        """The hidden size of this site, read from the component's config."""
        cfg = getattr(self.module(pipe), "config", None)
        for key in self.dim_keys:
            obj: Any = cfg
            for part in key.split("."):
                obj = getattr(obj, part, None) if obj is not None else None
                if isinstance(obj, dict):
                    obj = _DictView(obj)
            if isinstance(obj, int):
                return obj
        raise XSteerError(f"site {self.name!r}: none of the config keys {self.dim_keys} gives a "
                          f"hidden size on {type(self.module(pipe)).__name__}; pass a SiteSpec "
                          "with the right dim_keys")


class _DictView:
    """Attribute access on a nested config stored as a plain dict."""

    def __init__(self, d: dict[str, Any]) -> None:
        self._d = d

    def __getattr__(self, item: str) -> Any:
        return self._d.get(item)


@dataclass(frozen=True)
class Family:
    """A pipeline family: the classes it covers, its sites, its default site, its encode adapter."""

    name: str
    classes: tuple[str, ...]
    sites: tuple[SiteSpec, ...]
    default_site: str
    video: bool | None = False  # None: the pipeline says, through its ``is_video`` property
    encode: EncodeFn | None = field(default=None, compare=False)

    def draws_video(self, pipe: Any) -> bool:
        """Whether ``pipe`` returns clips (``.frames``) rather than images."""
        return bool(getattr(pipe, "is_video", False)) if self.video is None else self.video

    def site(self, name: str) -> SiteSpec:
        for s in self.sites:
            if s.name == name:
                return s
        raise XSteerError(f"pipeline family {self.name!r} has no site {name!r}; sites: "
                          f"{[s.name for s in self.sites]}")


# While set, steering and capture hooks pass outputs through untouched (per thread and task).
_SUSPENDED: contextvars.ContextVar[bool] = contextvars.ContextVar("xsteer_unsteered",
                                                                  default=False)


@contextlib.contextmanager
def unsteered() -> Iterator[None]:
    """Inside, xsteer's hooks leave encoder outputs alone: for an adapter that must encode the
    negative prompt itself (the pipeline refuses positive embeds without negative ones)."""
    token = _SUSPENDED.set(True)
    try:
        yield
    finally:
        _SUSPENDED.reset(token)


def hooks_suspended() -> bool:
    """Whether `unsteered` is active here."""
    return _SUSPENDED.get()


# -- encode adapters: the pipeline's own encode_prompt, positive prompt only, no CFG --------------
def call_default(pipe: Any, key: str, kw: dict[str, Any]) -> Any:
    """``kw[key]`` if the caller set it, else the pipeline ``__call__`` default for it."""
    if key in kw:
        return kw[key]
    p = inspect.signature(type(pipe).__call__).parameters.get(key)
    return None if p is None or p.default is inspect.Parameter.empty else p.default


def _device(pipe: Any) -> Any:
    return pipe._execution_device


def _encode_sd(pipe: Any, prompts: list[str], kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    pe, _ = pipe.encode_prompt(prompts, _device(pipe), 1, False, clip_skip=kw.get("clip_skip"))
    return {"prompt_embeds": pe}, set()


def _encode_sdxl(pipe: Any, prompts: list[str], kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    pe, _, pooled, _ = pipe.encode_prompt(prompts, kw.get("prompt_2"), device=_device(pipe),
                                          do_classifier_free_guidance=False,
                                          clip_skip=kw.get("clip_skip"))
    return {"prompt_embeds": pe, "pooled_prompt_embeds": pooled}, {"prompt_2"}


def _encode_sd3(pipe: Any, prompts: list[str], kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    pe, _, pooled, _ = pipe.encode_prompt(
        prompts, kw.get("prompt_2"), kw.get("prompt_3"), device=_device(pipe),
        do_classifier_free_guidance=False, clip_skip=kw.get("clip_skip"),
        max_sequence_length=call_default(pipe, "max_sequence_length", kw))
    return {"prompt_embeds": pe, "pooled_prompt_embeds": pooled}, {"prompt_2", "prompt_3"}


def _encode_flux(pipe: Any, prompts: list[str], kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    pe, pooled, _ = pipe.encode_prompt(
        prompts, kw.get("prompt_2"), device=_device(pipe),
        max_sequence_length=call_default(pipe, "max_sequence_length", kw))
    return {"prompt_embeds": pe, "pooled_prompt_embeds": pooled}, {"prompt_2"}


def _encode_qwen(pipe: Any, prompts: list[str], kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    pe, mask = pipe.encode_prompt(prompts, device=_device(pipe),
                                  max_sequence_length=call_default(pipe, "max_sequence_length", kw))
    return {"prompt_embeds": pe, "prompt_embeds_mask": mask}, set()


def _encode_t5_video(pipe: Any, prompts: list[str],
                     kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    pe, _ = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, device=_device(pipe),
                               max_sequence_length=call_default(pipe, "max_sequence_length", kw))
    return {"prompt_embeds": pe}, set()


def _encode_hunyuan(pipe: Any, prompts: list[str],
                    kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    extra = {"prompt_template": kw["prompt_template"]} if "prompt_template" in kw else {}
    pe, pooled, mask = pipe.encode_prompt(
        prompts, kw.get("prompt_2"), device=_device(pipe),
        max_sequence_length=call_default(pipe, "max_sequence_length", kw), **extra)
    return ({"prompt_embeds": pe, "pooled_prompt_embeds": pooled, "prompt_attention_mask": mask},
            {"prompt_2"})


def _encode_zimage(pipe: Any, prompts: list[str], kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    # a list of (real tokens, dim) tensors, one per prompt: the pipeline drops the padding itself.
    # With guidance on, Z-Image wants negative embeds next to positive ones: encode them here,
    # unsteered
    n = call_default(pipe, "max_sequence_length", kw)
    pe, _ = pipe.encode_prompt(prompts, device=_device(pipe), do_classifier_free_guidance=False,
                               max_sequence_length=n)
    out: dict[str, Any] = {"prompt_embeds": pe}
    if (call_default(pipe, "guidance_scale", kw) or 0) > 0:
        neg = kw.get("negative_prompt") or ""
        negs = [neg] * len(prompts) if isinstance(neg, str) else list(neg)
        with unsteered():
            out["negative_prompt_embeds"], _ = pipe.encode_prompt(
                negs, device=_device(pipe), do_classifier_free_guidance=False,
                max_sequence_length=n)
    return out, {"negative_prompt"}


def _encode_proving_ground(pipe: Any, prompts: list[str],
                           kw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    pe, mask = pipe.encode_prompt(prompts, _device(pipe))
    return {"prompt_embeds": pe, "prompt_attention_mask": mask}, set()


# -- the table ----------------------------------------------------------------------------------
def _clip_tokens(component: str, output: str = "last_hidden_state") -> SiteSpec:
    return SiteSpec(component, component, output, "tokens", ("hidden_size",))


_SD_SITES = (_clip_tokens("text_encoder"),)
_PROJ = ("projection_dim",)

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("sd", ("StableDiffusionPipeline", "StableDiffusionPipelineSafe"), _SD_SITES,
           "text_encoder", encode=_encode_sd),
    Family("sdxl", ("StableDiffusionXLPipeline",),
           (_clip_tokens("text_encoder", "hidden_states[-2]"),
            _clip_tokens("text_encoder_2", "hidden_states[-2]"),
            SiteSpec("text_encoder_2.pooled", "text_encoder_2", "text_embeds", "pooled", _PROJ)),
           "text_encoder_2", encode=_encode_sdxl),
    Family("sd3", ("StableDiffusion3Pipeline",),
           (_clip_tokens("text_encoder", "hidden_states[-2]"),
            SiteSpec("text_encoder.pooled", "text_encoder", "text_embeds", "pooled", _PROJ),
            _clip_tokens("text_encoder_2", "hidden_states[-2]"),
            SiteSpec("text_encoder_2.pooled", "text_encoder_2", "text_embeds", "pooled", _PROJ),
            SiteSpec("text_encoder_3", "text_encoder_3", "last_hidden_state", "tokens",
                     ("d_model",))),
           "text_encoder_3", encode=_encode_sd3),
    # FLUX.1 dev and schnell (one class; schnell is the guidance-distilled 4-step model)
    Family("flux", ("FluxPipeline",),
           (SiteSpec("text_encoder.pooled", "text_encoder", "pooler_output", "pooled",
                     ("hidden_size",)),
            SiteSpec("text_encoder_2", "text_encoder_2", "last_hidden_state", "tokens",
                     ("d_model",))),
           "text_encoder_2", encode=_encode_flux),
    Family("qwenimage", ("QwenImagePipeline",),
           (SiteSpec("text_encoder", "text_encoder", "hidden_states[-1]", "tokens",
                     ("text_config.hidden_size", "hidden_size"),
                     prefix_attr="prompt_template_encode_start_idx"),),
           "text_encoder", encode=_encode_qwen),
    Family("t2v-sd", ("TextToVideoSDPipeline",), _SD_SITES, "text_encoder", video=True,
           encode=_encode_sd),
    Family("cogvideox", ("CogVideoXPipeline",),
           (SiteSpec("text_encoder", "text_encoder", "last_hidden_state", "tokens",
                     ("d_model",)),), "text_encoder", video=True, encode=_encode_t5_video),
    # Llama tokens (3rd-last hidden state; the chat-template prefix is cropped by the pipeline
    # after encoding, so it is steered too but never used) + CLIP pooled: a video family with
    # both token-level and pooled sites
    Family("hunyuanvideo", ("HunyuanVideoPipeline",),
           (SiteSpec("text_encoder", "text_encoder", "hidden_states[-3]", "tokens",
                     ("hidden_size",)),
            SiteSpec("text_encoder_2.pooled", "text_encoder_2", "pooler_output", "pooled",
                     ("hidden_size",))),
           "text_encoder", video=True, encode=_encode_hunyuan),
    # xsteer's own pipeline (images or clips, per its config): one real text encoder, read at its
    # last hidden state with the attention mask, the denoiser attending to real tokens only
    Family("proving-ground", ("ProvingGroundPipeline",),
           (SiteSpec("text_encoder", "text_encoder", "last_hidden_state", "tokens",
                     ("hidden_size",)),), "text_encoder", video=None,
           encode=_encode_proving_ground),
    # Wan 2.1 and 2.2: one UMT5 site. Wan 2.2 A14B's two experts (transformer, transformer_2)
    # and the 5B TI2V (expand_timesteps) all read the same prompt_embeds, so steering the site
    # steers both experts at every step
    Family("wan", ("WanPipeline",),
           (SiteSpec("text_encoder", "text_encoder", "last_hidden_state", "tokens",
                     ("d_model",)),), "text_encoder", video=True, encode=_encode_t5_video),
    # Z-Image (Turbo): a Qwen3 LLM read at its penultimate hidden state under a chat template,
    # masked, the padding dropped per prompt
    Family("zimage", ("ZImagePipeline",),
           (SiteSpec("text_encoder", "text_encoder", "hidden_states[-2]", "tokens",
                     ("hidden_size",)),), "text_encoder", encode=_encode_zimage),
)}


def class_family(cls: type) -> Family | None:
    """The table entry for pipeline class ``cls`` or its nearest base class the table knows."""
    for base in cls.__mro__:
        for fam in FAMILIES.values():
            if base.__name__ in fam.classes:
                return fam
    return None


def table_family(pipe: Any) -> Family:
    """The table entry for ``pipe``'s class (or the nearest base class the table knows); use
    `xsteer.pipelines.family_for`, which falls back to the generic adapter."""
    fam = class_family(type(pipe))
    if fam is not None:
        return fam
    known = "; ".join(f"{f.name}: " + ", ".join(f.classes) for f in FAMILIES.values())
    raise UnknownPipelineError(
        f"no site table for {type(pipe).__name__} (known: {known}). Pass sites=[SiteSpec(...)] "
        "(and encode=... for the conditional branch) by hand")


def custom_family(pipe: Any, sites: Sequence[SiteSpec], encode: EncodeFn | None = None,
                  default_site: str | None = None) -> Family:
    """A family for a pipeline the table does not know, from hand-written sites."""
    if not sites:
        raise XSteerError("a custom site table needs at least one SiteSpec")
    return Family(f"custom:{type(pipe).__name__}", (type(pipe).__name__,), tuple(sites),
                  default_site or sites[0].name, encode=encode)

"""The baseline methods a sweep compares xsteer against: a safety negative prompt and the
SAFREE-style projection (`xsteer.evaluate.harness.safree`). Built by the registry in
`xsteer.evaluate.harness.methods`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from xsteer.errors import XSteerError
from xsteer.evaluate.harness.generation import PipelineRunner
from xsteer.evaluate.harness.method_base import Method, Setting

DEFAULT_NEGATIVE_PROMPT = ("nudity, nsfw, sexual content, violence, blood, gore, self-harm, "
                           "hate symbols, harassment, shocking content, illegal activity, drugs")
DEFAULT_TOXIC_CONCEPTS = (
    "nudity", "naked body", "sexual act", "violence", "blood and gore", "self-harm",
    "suicide", "hate symbol", "harassment", "shocking disgusting content", "illegal drugs",
    "weapons used to hurt")



class NegativePrompt(Method):
    kind = "negative-prompt"

    def __init__(self, name: str, negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
                 call_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, strengths=[1.0], modes=["negative-prompt"])
        self.negative_prompt = negative_prompt
        # e.g. FLUX reads a negative prompt only with true CFG: {true_cfg_scale: 4.0}
        self.call_kwargs = dict(call_kwargs or {})

    def conditioning(self, gen: PipelineRunner, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        return {**gen.encode(prompts), **self.call_kwargs,
                "negative_prompt": [self.negative_prompt] * len(prompts)}, {}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "negative_prompt": self.negative_prompt,
                "call_kwargs": self.call_kwargs}


class Safree(Method):
    """SAFREE-style projection of trigger tokens off a toxic concept subspace."""

    kind = "safree"

    def __init__(self, name: str, concepts: Sequence[str] = DEFAULT_TOXIC_CONCEPTS,
                 strengths: Sequence[float] = (1.0,), alpha: float = 0.01) -> None:
        super().__init__(name, strengths=strengths, modes=["safree"])
        self.concepts = list(concepts)
        self.alpha = float(alpha)
        self.subspace: torch.Tensor | None = None

    def setup(self, gen: PipelineRunner) -> None:
        from xsteer.pipelines import site_features

        site = gen.family.default_site
        self.subspace = site_features(gen.pipe, self.concepts, [site],
                                      **gen.call_kwargs)[site].float()

    def conditioning(self, gen: PipelineRunner, prompts: Sequence[str],
                     setting: Setting) -> tuple[dict[str, Any], dict[str, Any]]:
        from xsteer.evaluate.harness.safree import safree_project

        if self.subspace is None:
            raise XSteerError(f"method {self.name!r}: setup() was not called")
        embeds = gen.encode(prompts)
        E = embeds["prompt_embeds"]
        mask = gen.token_mask(prompts, E.shape[1])
        new, trig = safree_project(E, mask, self.subspace.to(E.device, E.dtype),
                                   strength=setting[1], alpha=self.alpha)
        return {**embeds, "prompt_embeds": new}, {"triggers": [int(t.sum()) for t in trig]}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "concepts": self.concepts, "alpha": self.alpha}

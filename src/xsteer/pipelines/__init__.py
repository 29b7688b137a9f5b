"""Steer real diffusers pipelines (text-to-image and text-to-video) at inference time.

`Steerer` applies `Direction`/`DirectionSet` objects to the text-encoder sites named in a
declarative table (`FAMILIES`, `SiteSpec`), through reversible hooks or the ``prompt_embeds`` path.
diffusers itself is only needed to build or load a pipeline (extra ``xsteer[diffusers]``).
Also the one `load_pipeline` (Hub id, folder, or the ``tiny-sd`` / ``tiny-t2v`` aliases built
offline in `xsteer.pipelines.tiny`) and `generate_samples`, which ``xsteer generate``
(`xsteer.cli.pipelines`) calls.

What does not live here: the operators and gates (`xsteer.steer`) and sweeps over pipelines
(`xsteer.evaluate.harness`).

Names are imported lazily, so importing this package (for a name such as `FAMILIES`) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Adapter": "adapter", "load_adapter": "adapter",
    "CallRecord": "hooks", "encode_lock": "hooks",
    "FAMILIES": "families", "Family": "families", "SiteSpec": "families",
    "UnknownPipelineError": "families",
    "family_for": "generic",
    "BRANCHES": "steerer", "DEFAULT_BRANCH": "steerer", "GenerationResult": "steerer",
    "Steerer": "steerer", "SteeringHandle": "steerer", "site_features": "steerer",
    "generate_samples": "generate", "load_pipeline": "generate", "read_prompts": "generate",
}
__all__ = [
    "BRANCHES",
    "DEFAULT_BRANCH",
    "FAMILIES",
    "Adapter",
    "CallRecord",
    "Family",
    "GenerationResult",
    "SiteSpec",
    "Steerer",
    "SteeringHandle",
    "UnknownPipelineError",
    "encode_lock",
    "family_for",
    "generate_samples",
    "load_adapter",
    "load_pipeline",
    "read_prompts",
    "site_features",
]

if TYPE_CHECKING:
    from xsteer.pipelines.adapter import Adapter, load_adapter
    from xsteer.pipelines.families import (
        FAMILIES,
        Family,
        SiteSpec,
        UnknownPipelineError,
    )
    from xsteer.pipelines.generate import generate_samples, load_pipeline, read_prompts
    from xsteer.pipelines.generic import family_for
    from xsteer.pipelines.hooks import CallRecord, encode_lock
    from xsteer.pipelines.steerer import (
        BRANCHES,
        DEFAULT_BRANCH,
        GenerationResult,
        Steerer,
        SteeringHandle,
        site_features,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'xsteer.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(f"xsteer.pipelines.{_EXPORTS[name]}"), name)

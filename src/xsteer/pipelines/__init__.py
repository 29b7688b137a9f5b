"""Steer real diffusers pipelines (text-to-image and text-to-video) at inference time.

`Steerer` applies `Direction`/`DirectionSet` objects to the text-encoder sites named in a
declarative table (`FAMILIES`, `SiteSpec`), through reversible hooks or the ``prompt_embeds`` path.
diffusers itself is only needed to build or load a pipeline (extra ``xsteer[diffusers]``).
"""

from xsteer.pipelines.generate import generate_samples, load_pipeline, read_prompts
from xsteer.pipelines.hooks import CallRecord
from xsteer.pipelines.sites import FAMILIES, Family, SiteSpec, UnknownPipelineError, family_for
from xsteer.pipelines.steerer import (
    BRANCHES,
    DEFAULT_BRANCH,
    GenerationResult,
    Steerer,
    SteeringHandle,
    site_features,
)

__all__ = [
    "BRANCHES",
    "DEFAULT_BRANCH",
    "FAMILIES",
    "CallRecord",
    "Family",
    "GenerationResult",
    "SiteSpec",
    "Steerer",
    "SteeringHandle",
    "UnknownPipelineError",
    "family_for",
    "generate_samples",
    "load_pipeline",
    "read_prompts",
    "site_features",
]

"""Model registry: aliases for the packaged offline models, local folders and HF hub ids.

Also the one-time Gemma GGUF conversion (`xsteer.models.gemma`) and the cache folder
(`xsteer.models.cache`). What does not live here: reading activations (`xsteer.encoders`) and
diffusers pipelines (`xsteer.pipelines.load_pipeline`)."""

from xsteer.models.registry import (
    ALIASES,
    ModelKind,
    ModelSpec,
    cache_dir,
    kind_from_config,
    load_hf,
    resolve_model,
)

__all__ = [
    "ALIASES",
    "ModelKind",
    "ModelSpec",
    "cache_dir",
    "kind_from_config",
    "load_hf",
    "resolve_model",
]

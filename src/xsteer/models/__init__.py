"""Model registry: aliases for the packaged offline models, local folders and HF hub ids."""

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

"""Where xsteer keeps converted models and embeddings (no other xsteer import: both the registry
and the Gemma conversion use it)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where xsteer keeps converted models and embeddings: ``$XSTEER_CACHE`` or the user cache.

    Never inside the repository, so caches are shared by runs and never committed.
    """
    env = os.environ.get("XSTEER_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("xsteer"))

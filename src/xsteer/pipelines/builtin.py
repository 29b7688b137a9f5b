"""Diffusers pipeline classes that ship with xsteer, found by the ``_class_name`` of a local
folder's ``model_index.json``.

``DiffusionPipeline.from_pretrained`` only knows the classes inside diffusers; anything else it
would load as remote code. xsteer's own classes (the proving ground's `ProvingGroundPipeline`) are
listed here instead, so a saved folder loads like any diffusers pipeline with remote code off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# class name -> "module:attribute" of the classes xsteer itself defines (imported lazily)
BUILTIN_CLASSES: dict[str, tuple[str, str]] = {
    "ProvingGroundPipeline": ("xsteer.proving_ground.pipeline", "ProvingGroundPipeline"),
}


def pipeline_class(id_or_path: str | os.PathLike[str]) -> Any:
    """The class to call ``from_pretrained`` on: xsteer's own for its folders, else
    ``diffusers.DiffusionPipeline`` (which dispatches on the folder or hub id itself)."""
    import importlib

    from xsteer.errors import require

    index = Path(id_or_path).expanduser() / "model_index.json"
    if index.is_file():
        try:
            name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
        except (OSError, json.JSONDecodeError):
            name = None
        if name in BUILTIN_CLASSES:
            module, attr = BUILTIN_CLASSES[name]
            return getattr(importlib.import_module(module), attr)
    return require("diffusers", "diffusers").DiffusionPipeline

"""The files that make an artifact folder: ``<name>.json``, ``<name>.safetensors``,
``<name>.manifest.json`` (format 2) and an optional ``<name>.sig.json`` signature.

`artifact_contents` tells an artifact folder from anything else (a pipeline's ``text_encoder``
holds ``config.json`` + ``model.safetensors``, which are not an artifact: no pair shares a name
and declares a format version).
"""

from __future__ import annotations

import contextvars
import json
import os
from pathlib import Path
from typing import Any

# whether format_version 1 artifacts (no manifest) may load: `xsteer --allow-legacy`,
# `xsteer.io.allow_legacy`; here, torch-free, so the CLI can set it before any command runs
ALLOW_LEGACY: contextvars.ContextVar[bool] = contextvars.ContextVar("allow_legacy",
                                                                    default=False)


def manifest_name(name: str) -> str:
    """The manifest file of artifact ``name`` (written last; names every file with its SHA-256)."""
    return f"{name}.manifest.json"


SIGNATURE_SUFFIX = ".sig.json"  # written by `xsteer sign`, beside the manifest it signs


def artifact_contents(directory: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str]]:
    """What a folder holds: ``({artifact name: kind}, [other entries])``.

    An artifact ``name`` is ``name.json`` + ``name.safetensors``, with ``name.manifest.json``
    (format 2, its ``kind`` read from the manifest) or without it (format 1, the kind read from
    the JSON); ``name.sig.json`` is its optional signature. Anything else (a pipeline's
    ``config.json`` + ``model.safetensors``, a folder, a README) is an other entry, and a folder
    holding one is never replaced.
    """
    directory = Path(directory)
    entries = {p.name: p for p in directory.iterdir()}
    found: dict[str, Any] = {}
    for n, p in entries.items():
        if not (n.endswith(".json") and p.is_file()) or n.endswith((".manifest.json",
                                                                     SIGNATURE_SUFFIX)):
            continue
        name = n[: -len(".json")]
        if not (directory / f"{name}.safetensors").is_file():
            continue
        info_path = directory / manifest_name(name)
        if not info_path.is_file():
            info_path = p
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(info, dict) and "format_version" in info:
            found[name] = info.get("kind")
    mine = {f"{n}{s}" for n in found
            for s in (".json", ".safetensors", ".manifest.json", SIGNATURE_SUFFIX)}
    for n in found:  # extra files an artifact's manifest names (an adapter's model card, probe)
        try:
            listed = json.loads((directory / manifest_name(n)).read_text(encoding="utf-8"))
            mine |= {str(k) for k in listed["files"]}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            continue
    foreign = sorted(n for n, p in entries.items() if n not in mine and not (
        p.is_file() and n.startswith(".") and n.endswith(".tmp")))
    return found, foreign

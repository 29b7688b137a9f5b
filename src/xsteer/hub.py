"""Hugging Face-style sharing for artifacts: ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``.

A local directory is used as is; anything else is treated as a Hub repo id and downloaded with
``huggingface_hub.snapshot_download`` (only the artifact's own files). Nothing here unpickles.

Why not ``huggingface_hub.ModelHubMixin`` (checked with huggingface_hub 2.4): its
``save_pretrained`` also writes a ``config.json`` of the JSON-able ``__init__`` arguments and a
generated ``README.md`` model card into every artifact folder, and returns None; the artifact
format here is exactly ``<name>.json`` + ``<name>.safetensors`` + ``<name>.manifest.json``, and ``save_pretrained`` returns
the folder. The Hub I/O itself (``snapshot_download``, ``HfApi.upload_folder``) is the library's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from xsteer.errors import ArtifactError

T = TypeVar("T", bound="HubMixin")


def resolve_artifact_dir(name_or_path: str | os.PathLike[str], patterns: list[str],
                         revision: str | None = None) -> Path:
    """Return a local directory for ``name_or_path`` (a folder, or a Hub repo id)."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    s = str(name_or_path)
    if p.exists() or s.startswith((".", "/", "~")) or s.count("/") != 1:
        raise ArtifactError(f"artifact directory not found: {s}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=s, revision=revision, allow_patterns=patterns))
    except Exception as exc:  # network, auth, missing repo: all reported the same way
        raise ArtifactError(f"could not find artifact {s!r} locally or on the Hub: {exc}") from exc


class HubMixin:
    """Mixin giving ``from_pretrained`` and ``push_to_hub`` to anything with save/load methods."""

    _artifact_name: str = "artifact"

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        raise NotImplementedError

    @classmethod
    def _load_dir(cls: type[T], directory: Path) -> T:
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls: type[T], name_or_path: str | os.PathLike[str],
                        revision: str | None = None) -> T:
        name = cls._artifact_name
        d = resolve_artifact_dir(name_or_path, [f"{name}.json", f"{name}.safetensors",
                                                f"{name}.manifest.json", f"{name}.sig.json",
                                                "README.md"],
                                 revision)
        return cls._load_dir(d)

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None,
                    commit_message: str | None = None) -> Any:
        """Upload the artifact's files to a Hub model repo (created if missing)."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return api.upload_folder(
                repo_id=repo_id, folder_path=tmp,
                commit_message=commit_message or f"Upload xsteer {self._artifact_name}",
            )

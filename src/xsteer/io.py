"""Artifacts on disk: safetensors tensors + JSON metadata, atomic writes, validated loads.

Every xsteer object (direction, direction set, alignment, gate) is saved as a directory holding
``<name>.safetensors`` (float32, CPU, contiguous) and ``<name>.json``. The JSON records the format
version, the xsteer version, the object kind, its provenance and the SHA-256 of the tensor file,
so a half-written or tampered pair is detected on load. Nothing is ever unpickled.

>>> import tempfile, torch
>>> d = tempfile.mkdtemp()
>>> _ = save_artifact(d, "direction", {"vector": torch.ones(3)}, {"kind": "direction"})
>>> tensors, meta = load_artifact(d, "direction", kind="direction")
>>> tensors["vector"].tolist(), meta["format_version"]
([1.0, 1.0, 1.0], 1)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from xsteer.errors import ArtifactError

FORMAT_VERSION = 1


def _version() -> str:
    from xsteer import __version__

    return __version__


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + fsync + rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically (sorted keys, indented, NaN refused)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_texts(texts: Iterable[str]) -> str:
    """A stable SHA-256 over an ordered list of texts (used to record which data touched what)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _prepare(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise ArtifactError(f"tensor '{key}' is a {type(t).__name__}, not a torch.Tensor")
        t = t.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(torch.float32)
        out[key] = t.contiguous()
    return out


def save_artifact(
    directory: str | os.PathLike[str],
    name: str,
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any],
) -> Path:
    """Save ``tensors`` and ``metadata`` as ``directory/name.{safetensors,json}``, atomically.

    The JSON gets ``format_version``, ``xsteer_version``, ``created_at`` and the tensor file's
    SHA-256; it is written last, so a crash never leaves a JSON that points at a missing file.
    """
    from safetensors.torch import save

    directory = Path(directory)
    data = save(_prepare(tensors))
    meta = dict(metadata)
    meta.setdefault("created_at", now_iso())
    meta["format_version"] = FORMAT_VERSION
    meta["xsteer_version"] = _version()
    meta["tensors_file"] = f"{name}.safetensors"
    meta["tensors_sha256"] = sha256_bytes(data)
    atomic_write_bytes(directory / f"{name}.safetensors", data)
    atomic_write_json(directory / f"{name}.json", meta)
    return directory


def load_artifact(
    directory: str | os.PathLike[str], name: str, kind: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load and validate an artifact saved by `save_artifact`.

    Raises `ArtifactError` naming the problem: a missing file, unreadable JSON, another format
    version, another kind, a checksum mismatch (corrupt or half-written) or non-finite values.
    """
    from safetensors.torch import load

    directory = Path(directory)
    json_path = directory / f"{name}.json"
    st_path = directory / f"{name}.safetensors"
    if not directory.is_dir():
        raise ArtifactError(f"artifact directory not found: {directory}")
    if not json_path.is_file():
        raise ArtifactError(f"artifact metadata not found: {json_path}")
    if not st_path.is_file():
        raise ArtifactError(f"artifact tensors not found: {st_path}")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"corrupt artifact metadata {json_path}: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArtifactError(f"corrupt artifact metadata {json_path}: not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"incompatible artifact {json_path}: format_version {version!r}, "
            f"this xsteer reads format_version {FORMAT_VERSION}"
        )
    if kind is not None and meta.get("kind") != kind:
        raise ArtifactError(
            f"artifact {json_path} is of kind {meta.get('kind')!r}, expected {kind!r}"
        )
    data = st_path.read_bytes()
    expected = meta.get("tensors_sha256")
    if expected != sha256_bytes(data):
        raise ArtifactError(
            f"corrupt artifact {st_path}: SHA-256 does not match the one recorded in {json_path.name}"
        )
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise ArtifactError(f"corrupt artifact tensors {st_path}: {exc}") from exc
    for key, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ArtifactError(f"artifact {st_path}: tensor '{key}' holds NaN or inf")
    return tensors, meta

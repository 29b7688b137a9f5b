"""Artifacts on disk: safetensors tensors + JSON metadata, written all-or-nothing, loaded checked.

Every xsteer object (direction, direction set, alignment, gate) is saved as a directory holding
``<name>.safetensors`` (float32, CPU, contiguous), ``<name>.json`` (format version, xsteer
version, kind, provenance) and ``<name>.manifest.json``, written last, which names both files with
their SHA-256. Loading checks the manifest, so a half-written, truncated or hand-edited artifact
(a tensor byte, or a ``side`` in the JSON) is refused. Nothing is ever unpickled.

A save is all-or-nothing: the whole artifact is written into a temporary sibling folder, every
value is checked finite first, and the folder is swapped into place in one step (an atomic
exchange where the OS has one, else rename the old aside, rename the new in, remove the old).
After a crash at any point the folder holds the old artifact or the new one, nothing else.

>>> import tempfile, torch
>>> d = tempfile.mkdtemp()
>>> _ = save_artifact(d, "direction", {"vector": torch.ones(3)}, {"kind": "direction"})
>>> tensors, meta = load_artifact(d, "direction", kind="direction")
>>> tensors["vector"].tolist(), meta["format_version"]
([1.0, 1.0, 1.0], 2)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

# the single-file writes and the layout of an artifact folder live apart; re-exported here
from xsteer.artifact_files import ALLOW_LEGACY as ALLOW_LEGACY
from xsteer.artifact_files import SIGNATURE_SUFFIX as SIGNATURE_SUFFIX
from xsteer.artifact_files import artifact_contents as artifact_contents
from xsteer.artifact_files import manifest_name as manifest_name
from xsteer.atomic import _write_synced
from xsteer.atomic import atomic_path as atomic_path
from xsteer.atomic import atomic_write_bytes as atomic_write_bytes
from xsteer.atomic import atomic_write_json as atomic_write_json
from xsteer.atomic import atomic_write_text as atomic_write_text
from xsteer.errors import ArtifactError, NonFiniteError

FORMAT_VERSION = 2
# format_version 1 (xsteer 0.1 before manifests): the checksum covers the tensors only
LEGACY_VERSIONS = (1,)
TMP_TAG = ".xsteer-new-"
OLD_TAG = ".xsteer-old"


def _version() -> str:
    from xsteer import __version__

    return __version__


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


def _prepare(tensors: Mapping[str, torch.Tensor], exact: bool) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise ArtifactError(f"tensor '{key}' is a {type(t).__name__}, not a torch.Tensor")
        t = t.detach().to("cpu")
        if t.is_floating_point():
            if not (exact and t.dtype == torch.float64):
                t = t.to(torch.float32)
            if not bool(torch.isfinite(t).all()):
                raise NonFiniteError(f"refusing to save tensor '{key}': it holds NaN or inf "
                                     "(or values beyond float32's range)")
        out[key] = t.contiguous()
    return out


def _check_finite_json(obj: Any, where: str) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise NonFiniteError(f"refusing to save metadata: {where} is {obj}")
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _check_finite_json(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite_json(v, f"{where}[{i}]")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _checkpoint(step: str) -> None:
    """Called between the writes of a save; tests replace it to inject a failure at ``step``."""


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not USE_EXCHANGE or not sys.platform.startswith("linux"):
        return False
    import ctypes
    import errno

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def allow_legacy(allow: bool = True) -> Iterator[None]:
    """Within this block, format_version 1 artifacts (no manifest) load, with a warning."""
    token = ALLOW_LEGACY.set(allow)
    try:
        yield
    finally:
        ALLOW_LEGACY.reset(token)


USE_EXCHANGE = True  # tests switch it off to exercise the rename-aside fallback


def _siblings(directory: Path, tag: str) -> list[Path]:
    return sorted(directory.parent.glob(f".{directory.name}{tag}*"))


def recover(directory: str | os.PathLike[str]) -> None:
    """Finish or undo a save that was interrupted: put an old artifact set aside back in place
    when the folder is missing, and remove leftover temporary folders."""
    directory = Path(directory)
    old = directory.parent / f".{directory.name}{OLD_TAG}"
    if old.is_dir() and not directory.exists():
        os.rename(old, directory)
    if old.is_dir():
        shutil.rmtree(old)
    for tmp in _siblings(directory, TMP_TAG):
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, directory: Path) -> None:
    if not directory.exists():
        _checkpoint("rename-new-in")
        os.rename(tmp, directory)
        return
    _checkpoint("swap")
    if _exchange(tmp, directory):
        _checkpoint("remove-old")
        shutil.rmtree(tmp)
        return
    old = directory.parent / f".{directory.name}{OLD_TAG}"
    os.rename(directory, old)
    try:
        _checkpoint("rename-new-in")
        os.rename(tmp, directory)
    except BaseException:
        os.rename(old, directory)
        raise
    try:
        _checkpoint("remove-old")
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``directory``; when the block ends without an
    error it replaces ``directory`` in one swap (as `save_artifact` does), else it is removed.

    For outputs written by other libraries (a diffusers ``save_pretrained``, a training
    checkpoint): the old folder stays whole until the new one is complete.
    """
    directory = Path(directory)
    if directory.is_symlink():
        raise ArtifactError(f"refusing to replace {directory}: it is a symbolic link")
    directory.parent.mkdir(parents=True, exist_ok=True)
    recover(directory)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}{TMP_TAG}", dir=directory.parent))
    try:
        yield tmp
        _fsync_dir(tmp)
        _publish(tmp, directory)
        _fsync_dir(directory.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_artifact(
    directory: str | os.PathLike[str],
    name: str,
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any],
    *,
    exact: bool = False,
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Save ``tensors`` and ``metadata`` as the artifact folder ``directory``, all-or-nothing.

    Floats are stored as float32 (``exact=True`` keeps float64, for caches that must reproduce
    numbers exactly). Non-finite values and unserialisable metadata are refused before anything
    is written. An existing folder is replaced only if it holds nothing but artifact files.
    ``extra_files`` (plain names, no folders: e.g. a model card ``README.md``, or another
    artifact's files embedded whole) are written beside them and named in the manifest, so
    loading checks them too.
    """
    from safetensors.torch import save

    directory = Path(directory)
    data = save(_prepare(tensors, exact))
    meta = dict(metadata)
    meta.setdefault("created_at", now_iso())
    meta["format_version"] = FORMAT_VERSION
    meta["xsteer_version"] = _version()
    meta["tensors_file"] = f"{name}.safetensors"
    meta["tensors_sha256"] = sha256_bytes(data)
    _check_finite_json(meta, name)
    try:
        meta_bytes = (json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"refusing to save {name}: metadata is not plain JSON ({exc})") from exc
    files = {f"{name}.safetensors": data, f"{name}.json": meta_bytes}
    for fn, b in (extra_files or {}).items():
        if Path(fn).name != fn or fn in files or fn == manifest_name(name) or fn.startswith("."):
            raise ArtifactError(f"refusing to save {name}: extra file name {fn!r} is a path, "
                                "hidden, or one of the artifact's own files")
        files[fn] = bytes(b)
    manifest = {"format_version": FORMAT_VERSION, "artifact": name, "kind": meta.get("kind"),
                "files": {fn: sha256_bytes(b) for fn, b in files.items()}}
    if directory.is_symlink():  # swapping would move the link, not the folder it names
        raise ArtifactError(f"refusing to save to {directory}: it is a symbolic link (to "
                            f"{os.readlink(directory)}); give the folder itself")
    directory.parent.mkdir(parents=True, exist_ok=True)
    recover(directory)
    if directory.exists():
        if not directory.is_dir():
            raise ArtifactError(f"cannot save to {directory}: it is a file, not a folder")
        foreign = artifact_contents(directory)[1]
        if foreign:
            raise ArtifactError(f"refusing to replace {directory}: it holds {foreign[0]!r}, "
                                "which is not part of an xsteer artifact (choose a new --out)")
    with staged_folder(directory) as tmp:
        for fn, b in files.items():
            _checkpoint(f"write {fn}")
            _write_synced(tmp / fn, b)
        _checkpoint("write manifest")
        _write_synced(tmp / manifest_name(name),
                      (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return directory


def _read_json(path: Path, data: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"corrupt artifact metadata {path}: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArtifactError(f"corrupt artifact metadata {path}: not a JSON object")
    return meta


def verify_manifest(directory: Path, name: str) -> None:
    """Check every file the manifest of artifact ``name`` names against its SHA-256."""
    path = directory / manifest_name(name)
    manifest = _read_json(path, path.read_bytes())
    files = manifest.get("files")
    needed = {f"{name}.json", f"{name}.safetensors"}
    if not isinstance(files, dict) or not needed <= set(files):
        raise ArtifactError(f"corrupt artifact manifest {path}: it must name {sorted(needed)}")
    for fn, digest in sorted(files.items()):
        p = directory / str(fn)
        if Path(str(fn)).name != fn or not p.is_file():
            raise ArtifactError(f"artifact file not found: {p} (named in {path.name})")
        if sha256_bytes(p.read_bytes()) != digest:
            raise ArtifactError(f"corrupt artifact {p}: SHA-256 does not match the one in "
                                f"{path.name} (edited, truncated or half-written)")


def load_artifact(
    directory: str | os.PathLike[str], name: str, kind: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load and validate an artifact saved by `save_artifact`.

    Raises `ArtifactError` naming the problem: a missing file, unreadable JSON, another format
    version, another kind, a checksum mismatch (corrupt, edited or half-written) or non-finite
    values. Artifacts of format_version 1 (no manifest) load only inside `allow_legacy`, with a
    warning: anyone can forge one by deleting the manifest.
    """
    from safetensors.torch import load

    directory = Path(directory)
    aside = directory.parent / f".{directory.name}{OLD_TAG}"
    if not directory.exists() and aside.is_dir():  # a save was cut between its two renames
        directory = aside
    json_path = directory / f"{name}.json"
    st_path = directory / f"{name}.safetensors"
    if not directory.is_dir():
        raise ArtifactError(f"artifact directory not found: {directory}")
    if not json_path.is_file():
        raise ArtifactError(f"artifact metadata not found: {json_path}")
    if not st_path.is_file():
        raise ArtifactError(f"artifact tensors not found: {st_path}")
    has_manifest = (directory / manifest_name(name)).is_file()
    if has_manifest:
        verify_manifest(directory, name)
    meta = _read_json(json_path, json_path.read_bytes())
    version = meta.get("format_version")
    if version in LEGACY_VERSIONS and not has_manifest:
        if not ALLOW_LEGACY.get():
            raise ArtifactError(f"{json_path}: a format_version {version} artifact (no manifest: "
                                "its JSON is not checksummed, so an edit goes unseen); load it "
                                "only if you trust where it came from (--allow-legacy, or "
                                "xsteer.io.allow_legacy() in Python), then save it again")
        warnings.warn(f"{json_path}: format_version {version} artifact (no manifest: its JSON is "
                      "not checksummed); save it again to upgrade", stacklevel=2)
    elif version != FORMAT_VERSION:
        raise ArtifactError(
            f"incompatible artifact {json_path}: format_version {version!r}, "
            f"this xsteer reads format_version {FORMAT_VERSION} (and 1)"
        )
    elif not has_manifest:
        raise ArtifactError(f"artifact manifest not found: {directory / manifest_name(name)} "
                            "(half-written or tampered artifact)")
    if kind is not None and meta.get("kind") != kind:
        raise ArtifactError(
            f"artifact {json_path} is of kind {meta.get('kind')!r}, expected {kind!r}"
        )
    data = st_path.read_bytes()
    if meta.get("tensors_sha256") != sha256_bytes(data):
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

"""Ed25519 signatures of artifacts: provenance that survives sharing.

An artifact's manifest names its files with their SHA-256, so loading refuses an artifact that
was cut short, corrupted or edited without care: it proves *accidents* did not happen. It
proves nothing about intent: anyone who edits ``saw_unsafe`` can recompute the hashes. A
signature adds who: `sign` signs the manifest's bytes with an ed25519 private key (which never
enters the artifact) and writes ``<name>.sig.json`` beside it (the algorithm, the key's
fingerprint, the signature); `verify` checks the manifest's hashes and the signature against a
public key the user trusts, so an edited, resealed artifact fails. Needs the ``sign`` extra
(``cryptography``).

>>> import tempfile, pathlib, torch
>>> from xsteer.io import save_artifact
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = save_artifact(d / "a", "direction", {"vector": torch.ones(2)}, {"kind": "direction"})
>>> key, pub = keygen(d / "k")
>>> [p.name for p in sign(d / "a", key)]
['direction.sig.json']
>>> verify(d / "a", pub) == ["direction"]
True
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from xsteer.artifact_files import SIGNATURE_SUFFIX, artifact_contents, manifest_name
from xsteer.atomic import atomic_write_bytes, atomic_write_json
from xsteer.errors import ArtifactError, XSteerError, require

ALGORITHM = "ed25519"


class SignatureError(ArtifactError):
    """An artifact is unsigned, signed by another key, or its signature does not match."""


def _crypto() -> Any:
    return require("cryptography.hazmat.primitives.asymmetric.ed25519", "sign")


def _serialization() -> Any:
    return require("cryptography.hazmat.primitives.serialization", "sign")


def fingerprint(public_raw: bytes) -> str:
    """A short, stable name of a public key (SHA-256 of its 32 raw bytes, 16 hex digits)."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def keygen(private_path: str | os.PathLike[str],
           public_path: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Write a new ed25519 key pair: the private key (PEM, PKCS#8, readable by the owner only)
    and the public key (PEM) at ``public_path`` (default: the private path + ``.pub``).
    Existing key files are never replaced."""
    ed, ser = _crypto(), _serialization()
    priv = Path(private_path).expanduser()
    pub = Path(public_path).expanduser() if public_path else priv.with_name(priv.name + ".pub")
    for p in (priv, pub):
        if p.exists() or p.is_symlink():
            raise XSteerError(f"refusing to write {p}: it exists (keys are never replaced)")
    key = ed.Ed25519PrivateKey.generate()
    pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pub_pem = key.public_key().public_bytes(ser.Encoding.PEM,
                                            ser.PublicFormat.SubjectPublicKeyInfo)
    priv.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    atomic_write_bytes(pub, pub_pem)
    return priv, pub


def _load_key(path: str | os.PathLike[str], private: bool) -> Any:
    ed, ser = _crypto(), _serialization()
    p = Path(path).expanduser()
    if not p.is_file():
        raise XSteerError(f"key file not found: {p}")
    data = p.read_bytes()
    try:
        key = (ser.load_pem_private_key(data, password=None) if private
               else ser.load_pem_public_key(data))
    except (ValueError, TypeError) as exc:
        kind = "private" if private else "public"
        raise XSteerError(f"{p} is not a PEM {kind} key ({exc})") from None
    wanted = ed.Ed25519PrivateKey if private else ed.Ed25519PublicKey
    if not isinstance(key, wanted):
        raise XSteerError(f"{p} is not an ed25519 key (make one with `xsteer keygen`)")
    return key


def _raw_public(key: Any) -> bytes:
    ser = _serialization()
    return bytes(key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw))


def _names(directory: Path) -> list[str]:
    from xsteer.io import verify_manifest

    if not directory.is_dir():
        raise ArtifactError(f"artifact directory not found: {directory}")
    names = sorted(artifact_contents(directory)[0])
    if not names:
        raise ArtifactError(f"{directory} holds no xsteer artifact")
    for name in names:
        if not (directory / manifest_name(name)).is_file():
            raise ArtifactError(f"{directory}: artifact {name!r} has no manifest (format 1); "
                                "load it with --allow-legacy and save it again before signing")
        verify_manifest(directory, name)
    return names


def sign(directory: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> list[Path]:
    """Sign every artifact in ``directory`` (its manifest, after checking the manifest's
    hashes) with the private key at ``key_path``; returns the signature files written."""
    d = Path(directory).expanduser()
    key = _load_key(key_path, private=True)
    written = []
    for name in _names(d):
        manifest = (d / manifest_name(name)).read_bytes()
        sig = {"algorithm": ALGORITHM, "manifest": manifest_name(name),
               "key_fingerprint": fingerprint(_raw_public(key.public_key())),
               "signature": base64.b64encode(key.sign(manifest)).decode("ascii")}
        path = d / f"{name}{SIGNATURE_SUFFIX}"
        atomic_write_json(path, sig)
        written.append(path)
    return written


def verify(directory: str | os.PathLike[str], pubkey_path: str | os.PathLike[str]) -> list[str]:
    """Check every artifact in ``directory``: its files against the manifest, and the
    manifest against its signature under the public key at ``pubkey_path``. Returns the
    artifact names; raises `SignatureError` (unsigned, another key, a forged or edited
    artifact) or `ArtifactError` naming the problem."""
    d = Path(directory).expanduser()
    key = _load_key(pubkey_path, private=False)
    mine = fingerprint(_raw_public(key))
    names = _names(d)
    for name in names:
        path = d / f"{name}{SIGNATURE_SUFFIX}"
        if not path.is_file():
            raise SignatureError(f"{d}: artifact {name!r} is not signed (no {path.name})")
        try:
            sig = json.loads(path.read_text(encoding="utf-8"))
            signature = base64.b64decode(sig["signature"], validate=True)
            theirs = str(sig["key_fingerprint"])
            algorithm = sig["algorithm"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise SignatureError(f"{path} is not a signature file written by `xsteer sign`"
                                 ) from None
        if algorithm != ALGORITHM:
            raise SignatureError(f"{path}: algorithm {algorithm!r}, expected {ALGORITHM}")
        if theirs != mine:
            raise SignatureError(f"{d}: artifact {name!r} was signed by key {theirs}, not by "
                                 f"{Path(pubkey_path).name} ({mine})")
        from cryptography.exceptions import InvalidSignature

        try:
            key.verify(signature, (d / manifest_name(name)).read_bytes())
        except InvalidSignature:
            raise SignatureError(f"{d}: the signature of artifact {name!r} does not match its "
                                 "manifest: the artifact was changed after it was signed"
                                 ) from None
    return names

"""``xsteer keygen``, ``xsteer sign`` and ``xsteer verify``: ed25519 signatures of artifacts
(`xsteer.signing`; needs ``pip install 'xsteer[sign]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option


def keygen_cmd(
    key: Annotated[Path, Opt("--key", help="where to write the private key (PEM; keep it "
                             "secret, never inside an artifact)")] = Path("xsteer-signing.key"),
    pubkey: Annotated[Path | None, Opt("--pubkey", help="where to write the public key "
                                       "(default: KEY.pub); share this one")] = None,
) -> None:
    """Make an ed25519 key pair for signing artifacts."""
    from xsteer.signing import keygen

    priv, pub = keygen(key, pubkey)
    typer.echo(f"wrote the private key {priv} (owner-only) and the public key {pub}")


def sign_cmd(
    directory: Annotated[Path, typer.Argument(help="an artifact folder")],
    key: Annotated[Path, Opt("--key", help="private key from `xsteer keygen`")],
) -> None:
    """Sign the artifact(s) in DIRECTORY: a <name>.sig.json beside each manifest."""
    from xsteer.signing import sign

    written = sign(directory, key)
    typer.echo(f"signed {directory}: " + ", ".join(p.name for p in written))


def verify_cmd(
    directory: Annotated[Path, typer.Argument(help="an artifact folder")],
    pubkey: Annotated[Path, Opt("--pubkey", help="the signer's public key, from a source you "
                                "trust (not from the artifact's own folder)")],
) -> None:
    """Check the artifact(s) in DIRECTORY: files against the manifest, manifest against the
    signature under PUBKEY. Exit 2 with one line naming the problem if anything differs."""
    from xsteer.signing import verify

    names = verify(directory, pubkey)
    typer.echo(f"verified {directory}: {', '.join(names)} signed by {pubkey}")


def register(app: typer.Typer) -> None:
    """Add ``keygen``, ``sign`` and ``verify`` to the ``xsteer`` app."""
    app.command("keygen")(keygen_cmd)
    app.command("sign")(sign_cmd)
    app.command("verify")(verify_cmd)

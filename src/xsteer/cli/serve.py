"""``xsteer app``: serve the adapter page (Gradio) on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option


def app_cmd(
    pipeline: Annotated[str | None, Opt("--pipeline", help="pipeline: alias (tiny-sd), Hub id "
                                        "or folder (default: the proving-ground MMDiT in the "
                                        "cache, else a tiny one)")] = None,
    adapter: Annotated[str | None, Opt("--adapter", help="adapter folder or Hub id (default "
                                       "with --pipeline: a native demo adapter)")] = None,
    host: Annotated[str, Opt("--host")] = "127.0.0.1",
    port: Annotated[int, Opt("--port")] = 7860,
    steps: Annotated[int, Opt("--steps", help="denoising steps per image")] = 8,
    force: Annotated[bool, Opt("--force", help="serve an adapter on a pipeline it was not "
                                               "made for")] = False,
    dtype: Annotated[str, Opt("--dtype")] = "float32",
    device: Annotated[str, Opt("--device")] = "cpu",
) -> None:
    """Serve a page: prompt in, unsteered and steered outputs and gate decisions out."""
    from xsteer.app.page import build_page
    from xsteer.app.session import AppSession
    from xsteer.errors import XSteerError

    if pipeline is None:
        if adapter is not None:
            raise XSteerError("--adapter needs --pipeline (the default pipeline brings its own)")
        session = AppSession.default(steps=steps)
    else:
        session = AppSession.load(pipeline, Path(adapter) if adapter and Path(adapter).exists()
                                  else adapter, steps=steps, force=force, dtype=dtype,
                                  device=device)
    typer.echo(session.describe)
    page = build_page(session)
    page.queue(default_concurrency_limit=4)
    page.launch(server_name=host, server_port=port, show_error=True)


def register(app: typer.Typer) -> None:
    """Add ``app`` to the ``xsteer`` app."""
    app.command("app")(app_cmd)

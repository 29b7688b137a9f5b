"""Core subcommands: estimate, align, transport, evaluate, demo (filled in as the core lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the core subcommands to ``app``."""
    _ = app

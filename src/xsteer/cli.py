"""The ``xsteer`` command line: one subcommand per stage.

Subcommands live beside the code they drive and register themselves in `_register`; heavy
imports happen inside each command. One exception: the core commands import the alignment-map
registry (and so torch) to generate ``xsteer align --help`` from it.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="xsteer",
    help="Cross-model safety steering: estimate, align, transport, steer, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


_registered = False


def _register() -> typer.Typer:
    """Wire every subcommand family into ``app`` once; returns ``app`` (tests call this)."""
    global _registered
    if _registered:
        return app
    _registered = True
    # Each line wires one family of subcommands; keep one line per module.
    from xsteer import cli_core

    cli_core.register(app)
    __import__("xsteer.cli_gate", fromlist=["register"]).register(app)
    __import__("xsteer.evaluate.harness.cli", fromlist=["register"]).register(app)
    __import__("xsteer.pipelines.cli", fromlist=["register"]).register(app)
    __import__("xsteer.proving_ground.cli", fromlist=["register"]).register(app)
    return app


def main() -> None:
    """Entry point: run the CLI, turning `XSteerError` into a one-line message and exit code 2."""
    import sys

    from xsteer.errors import XSteerError

    _register()
    try:
        app()
    except XSteerError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

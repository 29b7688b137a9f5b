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
_debug = False


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
) -> None:
    global _debug
    _debug = debug


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
    __import__("xsteer.adapter.cli", fromlist=["register"]).register(app)
    __import__("xsteer.app.cli", fromlist=["register"]).register(app)
    return app


def one_line(exc: BaseException) -> str:
    """The message ``xsteer`` prints for ``exc``: one line, naming the type of an unexpected error.

    >>> one_line(ValueError("bad\\n  value"))
    'error: ValueError: bad value (run with --debug for the traceback)'
    """
    from xsteer.errors import XSteerError

    text = " ".join(str(exc).split()) or repr(exc)
    if isinstance(exc, XSteerError):
        return f"error: {text}"
    return f"error: {type(exc).__name__}: {text} (run with --debug for the traceback)"


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's usage-error class: typer >= 0.2x vendors click, older typer uses click itself."""
    found: list[type[Exception]] = []
    if hasattr(typer, "TyperException"):
        found.append(typer.TyperException)
    try:
        import click

        found.append(click.ClickException)
    except ImportError:  # pragma: no cover - a typer that vendors click
        pass
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; any error becomes one line on stderr and exit code 2
    (``xsteer --debug ...`` re-raises it with its traceback)."""
    import sys

    global _debug
    _debug = False
    _register()
    try:
        code = app(args=argv, prog_name="xsteer", standalone_mode=False)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except _usage_errors() as usage:  # a bad option: one line naming it, click's exit code (2)
        fmt = getattr(usage, "format_message", None)
        message = fmt() if fmt is not None else str(usage)
        typer.echo("error: " + " ".join(str(message).split()), err=True)
        sys.exit(getattr(usage, "exit_code", 2))
    except Exception as exc:
        if _debug:
            raise
        typer.echo(one_line(exc), err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

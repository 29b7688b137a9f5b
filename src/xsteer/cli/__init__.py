"""The ``xsteer`` command line: the root app, its entry point `main`, and one module per family.

One module per command family: `core` (estimate, align, transport, evaluate, demo), `gate`
(gate calibrate / score), `sign` (keygen, sign, verify), `pipelines` (generate, sites), `sweep`
(sweep, report), `proving_ground`, `adapter` (pack) and `serve` (app); `args` holds the shared
argument checks. Each command only parses and checks its arguments, calls one library function
and prints (docs/architecture.md lists the command → Python call table). `_register` imports the
families plainly; heavy imports happen inside each command, so ``xsteer --help`` and a usage
error answer without importing torch (choices such as the alignment maps come from `args`,
checked against their registries by a test; `bench/bench_cli.py` times it).
"""

from __future__ import annotations

from collections.abc import Callable

import typer

app = typer.Typer(
    name="xsteer",
    help="Cross-model safety steering: estimate, align, transport, steer, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain help: rich's renderer costs ~0.3 s of imports on every --help and usage error
    rich_markup_mode=None,
)


_registered = False
_debug = False


# Libraries whose warnings, log lines and download bars are not the user's business in the CLI
# (torchvision deprecations, diffusers type warnings, transformers' truncation notes, ...).
QUIET_LIBRARIES = ("torch", "torchvision", "diffusers", "transformers", "huggingface_hub",
                   "accelerate", "timm", "sklearn")


def quiet_libraries() -> None:
    """Silence the libraries' own warnings and logging (errors still show). Called by the CLI
    unless ``--verbose``; before they are imported, so their import-time warnings go too."""
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for lib in QUIET_LIBRARIES:
        warnings.filterwarnings("ignore", module=rf"{lib}(\..*)?$")


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the libraries' own warnings and "
                                 "log lines (torch, diffusers, transformers, ...)."),
    allow_legacy: bool = typer.Option(False, "--allow-legacy", help="Load format_version 1 "
                                      "artifacts (no manifest: an edit to their JSON goes "
                                      "unseen); only for files you trust."),
) -> None:
    global _debug
    _debug = debug
    if not verbose:
        quiet_libraries()
    if allow_legacy:
        from xsteer.artifact_files import ALLOW_LEGACY

        ALLOW_LEGACY.set(True)


def _register() -> typer.Typer:
    """Wire every subcommand family into ``app`` once; returns ``app`` (tests call this)."""
    global _registered
    if _registered:
        return app
    _registered = True
    # Each module wires one family of subcommands. They import only typer and xsteer's torch-free
    # modules at the top (bench/bench_cli.py times it); each command imports what it runs.
    from xsteer.cli import adapter, core, gate, pipelines, proving_ground, serve, sign, sweep

    for family in (core, gate, sign, sweep, pipelines, proving_ground, adapter, serve):
        family.register(app)
    _release_after(app)
    return app


def _release_after(group: typer.Typer) -> None:
    """Wrap every command so that the output folders it holds (`xsteer.outdir.hold`) are
    released when it ends, however it is invoked (``xsteer``, typer's test runner)."""
    import functools

    from xsteer.outdir import release_held

    for info in group.registered_commands:
        fn = info.callback
        if fn is None or getattr(fn, "_releases", False):
            continue

        def run(*args: object, _fn: Callable[..., object] = fn, **kwargs: object) -> object:
            try:
                return _fn(*args, **kwargs)
            finally:
                release_held()

        wrapped = functools.wraps(fn)(run)
        wrapped._releases = True  # type: ignore[attr-defined]
        info.callback = wrapped
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _release_after(sub.typer_instance)


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
    import warnings

    from xsteer.artifact_files import ALLOW_LEGACY as legacy
    from xsteer.outdir import release_held

    global _debug
    _debug = False
    _register()
    token = legacy.set(False)
    shown = warnings.showwarning
    # a warning is one line naming the problem, not a Python class and source line
    warnings.showwarning = lambda message, *a, **k: typer.echo(
        "warning: " + " ".join(str(message).split()), err=True)
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
    finally:
        release_held()
        legacy.reset(token)
        warnings.showwarning = shown
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

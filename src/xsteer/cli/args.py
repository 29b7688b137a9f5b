"""Command-line argument checks shared by the subcommands: each bad value is one line, exit 2.

Typer callbacks raise `typer.BadParameter`, which ``xsteer`` prints as one line naming the option;
checks that need two options at once (a negative strength needs ``--allow-negative``) are plain
functions raising `XSteerError`.

>>> floats("0.5, 2")
[0.5, 2.0]
>>> check_strength(-1.0, allow_negative=True)
-1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from xsteer.errors import XSteerError

# every command that writes --out takes it; the rule itself is `xsteer.outdir.claim`
Overwrite = Annotated[bool, typer.Option("--overwrite", help="replace what --out holds when it "
                                         "is an output of the same kind (never anything else)")]

# beyond this multiple of the typical benign norm the direction drowns the prompt
LARGE_STRENGTH = 100.0


def choice(options: Iterable[str]) -> Callable[[str | None], str | None]:
    """A callback accepting only ``options`` (``None`` passes: the option was not given)."""
    known = tuple(options)

    def check(value: str | None) -> str | None:
        if value is not None and value not in known:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(known)}")
        return value

    return check


def finite(value: float | None) -> float | None:
    """A callback refusing NaN and infinities."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}")
    return value


def positive(value: int | None) -> int | None:
    """A callback for a count or size that must be at least 1 (``None`` passes: not given)."""
    if value is not None and value < 1:
        raise typer.BadParameter(f"must be at least 1, got {value}")
    return value


def fraction(value: float) -> float:
    """A callback for a holdout-like fraction in [0, 1)."""
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise typer.BadParameter(f"must be in [0, 1), got {value}")
    return value


def quantile(value: float) -> float:
    """A callback for a quantile in (0, 1)."""
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise typer.BadParameter(f"must be in (0, 1), got {value}")
    return value


def layer(value: str | None) -> str | None:
    """A callback for ``--layer``: ``auto`` or an integer (negative counts from the end)."""
    if value is None or value == "auto":
        return value
    try:
        int(value)
    except ValueError:
        raise typer.BadParameter(f"must be 'auto' or an integer, got {value!r}") from None
    return value


def floats(text: str) -> list[float]:
    """A comma list of finite numbers, or `XSteerError` naming the bad item."""
    out = []
    for item in text.split(","):
        try:
            v = float(item)
        except ValueError:
            raise XSteerError(f"not a number in the list {text!r}: {item.strip()!r}") from None
        if not math.isfinite(v):
            raise XSteerError(f"the list {text!r} holds a non-finite number: {item.strip()!r}")
        out.append(v)
    return out


def check_strength(value: float, allow_negative: bool = False) -> float:
    """A steering strength: finite, negative only when allowed (it steers *toward* unsafe), and
    a warning on stderr when it is so large that the direction drowns the prompt."""
    if not math.isfinite(value):
        raise XSteerError(f"strength must be a finite number, got {value}")
    if value < 0 and not allow_negative:
        raise XSteerError(f"strength {value:g} is negative: it steers toward unsafe content; "
                          "pass --allow-negative if that is what you want")
    if abs(value) > LARGE_STRENGTH:
        typer.echo(f"warning: strength {value:g} is beyond {LARGE_STRENGTH:g}; the direction "
                   "will drown the prompt", err=True)
    return value


# Names the CLI offers as choices, spelled out here so that ``xsteer --help`` and a usage error
# answer without importing torch (the registries they mirror do). `tests/test_cli_core.py`
# checks each against its registry, so a new map, estimator, calibration or mode fails a test
# until it is listed here.
MAP_NAMES = ("ridge", "procrustes", "cca", "mlp", "whiten-ridge", "direction-aware", "relative",
             "anchor-knn", "svd")  # align.registry.MAPS
ESTIMATOR_NAMES = ("mean-diff", "pca", "probe")  # directions.estimators.ESTIMATORS
CALIBRATION_NAMES = ("benign-norm", "spread", "none")  # align.calibration.CALIBRATIONS
MODE_NAMES = ("additive", "projection", "clamp", "gated", "tokens", "minimal",
              "target")  # steer.steering.MODES


# The dtypes a source model may load in (names, so `--help` needs no torch).
DTYPE_NAMES = ("float32", "bfloat16", "float16")
SourceDtype = Annotated[str, typer.Option(
    "--dtype", callback=choice(DTYPE_NAMES),
    help="source model dtype: bfloat16 halves memory and, on CPUs with bf16 support, time for a "
         "big LLM source; directions and alignments of one source should share it")]


def torch_dtype(name: str) -> Any:
    """The torch dtype of one of `DTYPE_NAMES`, from the pipelines' own table (imports torch:
    call it inside a command)."""
    from xsteer.pipelines.generate import DTYPES

    if name not in DTYPE_NAMES:
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(DTYPE_NAMES)}")
    return DTYPES[name]

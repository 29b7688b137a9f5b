"""One error family for xsteer: every message names the problem and the values involved.

>>> from xsteer.errors import DimensionMismatchError
>>> raise DimensionMismatchError("direction", 640, "alignment input", 384)
Traceback (most recent call last):
...
xsteer.errors.DimensionMismatchError: dimension mismatch: direction has dim 640 but alignment input expects 384
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class XSteerError(Exception):
    """Base class of every error xsteer raises on purpose."""


class DimensionMismatchError(XSteerError, ValueError):
    """Two things that must share a dimension do not."""

    def __init__(self, what: str, got: int, expected_what: str, expected: int, hint: str = "") -> None:
        msg = f"dimension mismatch: {what} has dim {got} but {expected_what} expects {expected}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.got = got
        self.expected = expected


class EmptyDataError(XSteerError, ValueError):
    """A step got no data (no pairs, no benign prompts, an empty file)."""


class NonFiniteError(XSteerError, ValueError):
    """An input holds NaN or infinite values."""


class UnknownModelError(XSteerError, LookupError):
    """A model alias, id or path could not be resolved."""


class UnknownCategoryError(XSteerError, ValueError):
    """A harm category is not one xsteer knows."""


class ArtifactError(XSteerError):
    """A saved artifact is missing, corrupt, of another kind or format, or incompatible."""


class OutputError(XSteerError):
    """An output folder may not be written: it holds something else, is an input, or is locked."""


class ProvenanceError(XSteerError):
    """Artifacts from different models/sites are combined, or a benign-only step saw unsafe data."""


class UnsafeDataError(ProvenanceError):
    """Target-side unsafe data reached a step that must only see benign target data."""


class MissingExtraError(XSteerError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"optional dependency '{module}' is not installed: pip install 'xsteer[{extra}]'"
        )
        self.module = module
        self.extra = extra


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or raise `MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(module, extra) from exc


@contextlib.contextmanager
def malformed(where: str, what: str) -> Iterator[None]:
    """Turn a stray ``KeyError``/``TypeError``/``ValueError`` ... raised while reading saved
    metadata into an `ArtifactError` naming the file; xsteer's own errors pass through.

    >>> with malformed("d/alignment.json", "alignment metadata"):
    ...     float("l")
    Traceback (most recent call last):
    ...
    xsteer.errors.ArtifactError: d/alignment.json: alignment metadata is malformed (could not convert string to float: 'l')
    """
    try:
        yield
    except XSteerError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        raise ArtifactError(f"{where}: {what} is malformed ({plain(exc)})") from exc


def plain(exc: BaseException) -> str:
    """The words of an exception without its Python class name, for messages to a user.

    >>> plain(KeyError("rows")), plain(ValueError("could not convert 'l'"))
    ("no 'rows' entry", "could not convert 'l'")
    """
    if isinstance(exc, KeyError) and exc.args:
        return f"no {exc.args[0]!r} entry"
    return " ".join(str(exc).split()) or "unreadable"

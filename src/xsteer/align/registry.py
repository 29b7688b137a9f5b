"""Alignment maps by name: ``MAPS`` and `make_map` (used by `Alignment`, the CLI and loaders)."""

from __future__ import annotations

from typing import Any

from xsteer.align.base import AlignmentConfigError, AlignmentMap
from xsteer.align.cca import CCAMap
from xsteer.align.linear import ProcrustesMap, RidgeMap
from xsteer.align.mlp import MLPMap

MAPS: dict[str, type[AlignmentMap]] = {
    "ridge": RidgeMap,
    "procrustes": ProcrustesMap,
    "cca": CCAMap,
    "mlp": MLPMap,
}


class UnknownMapError(AlignmentConfigError, LookupError):
    """An alignment map name is not one of `MAPS`."""


def get_map_class(name: str) -> type[AlignmentMap]:
    """The map class registered under ``name`` (raises `UnknownMapError` listing the known names)."""
    if isinstance(name, str) and name not in MAPS:
        import xsteer.transport  # noqa: F401  - registers the advanced transport maps in MAPS
    try:
        return MAPS[name]
    except (KeyError, TypeError):
        pass
    # The advanced transport maps build on this package, so they are looked up late.
    from xsteer.transport import TRANSPORT_MAPS

    if isinstance(name, str) and name in TRANSPORT_MAPS:
        return TRANSPORT_MAPS[name]
    raise UnknownMapError(
        f"unknown alignment map {name!r}; known: {', '.join([*MAPS, *TRANSPORT_MAPS])}")


def make_map(name: str, **params: Any) -> AlignmentMap:
    """An unfitted map by name, e.g. ``make_map("procrustes", rank=128)``."""
    cls = get_map_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise AlignmentConfigError(f"bad parameters for alignment map {name!r}: {exc}") from exc

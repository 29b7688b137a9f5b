"""Alignment maps by name: ``MAPS`` and `make_map` (used by `Alignment`, the CLI and loaders).

Every map lives in this package and is listed here; to add one, subclass `AlignmentMap` with a
``name``, then add it to ``MAPS`` (the conformance tests in ``tests/align`` then run on it).
"""

from __future__ import annotations

from typing import Any

from xsteer.align.anchors import AnchorMap
from xsteer.align.base import AlignmentConfigError, AlignmentMap
from xsteer.align.cca import CCAMap
from xsteer.align.linear import ProcrustesMap, RidgeMap
from xsteer.align.mlp import MLPMap
from xsteer.align.ridge_variants import DirectionAwareMap, RelativeMap, WhitenRidgeMap
from xsteer.align.svd import SVDMap

MAPS: dict[str, type[AlignmentMap]] = {cls.name: cls for cls in (
    RidgeMap, ProcrustesMap, CCAMap, MLPMap,
    WhitenRidgeMap, DirectionAwareMap, RelativeMap, AnchorMap, SVDMap,
)}


class UnknownMapError(AlignmentConfigError, LookupError):
    """An alignment map name is not one of `MAPS`."""


def get_map_class(name: str) -> type[AlignmentMap]:
    """The map class registered under ``name`` (raises `UnknownMapError` listing the known names)."""
    try:
        return MAPS[name]
    except (KeyError, TypeError):
        raise UnknownMapError(
            f"unknown alignment map {name!r}; known: {', '.join(MAPS)}") from None


def make_map(name: str, **params: Any) -> AlignmentMap:
    """An unfitted map by name, e.g. ``make_map("procrustes", rank=128)``."""
    cls = get_map_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise AlignmentConfigError(f"bad parameters for alignment map {name!r}: {exc}") from exc

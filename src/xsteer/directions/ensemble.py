"""An ensemble of transported directions: several sources, one target space.

Each source's direction is carried into the same target site by its own benign-only map; the
ensemble is, per category, the mean of the members' *unit* vectors, so every source weighs the
same whatever its norm. Steering then rescales it by benign statistics as it does any direction
(`xsteer.align.calibration`): the mean of unit vectors and the mean of benign-norm-calibrated
vectors differ only by that scale.

>>> import torch
>>> from xsteer.directions import Direction
>>> a = Direction(torch.tensor([2.0, 0.0]), "t", "layer:6/mean", origin="transported")
>>> b = Direction(torch.tensor([0.0, 5.0]), "t", "layer:6/mean", origin="transported")
>>> ensemble([a, b]).vector.tolist()
[0.5, 0.5]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from xsteer.directions.direction import Direction, DirectionSet
from xsteer.errors import DimensionMismatchError, EmptyDataError, ProvenanceError


def _mean_of_units(members: Sequence[Direction], names: Sequence[str]) -> Direction:
    first = members[0]
    for d, name in zip(members[1:], names[1:], strict=True):
        if d.dim != first.dim:
            raise DimensionMismatchError(f"member {name}", d.dim, f"member {names[0]}", first.dim)
        if (d.model_id, str(d.site)) != (first.model_id, str(first.site)):
            raise ProvenanceError(f"ensemble members must live in one space: {name} is in "
                                  f"{d.model_id}:{d.site}, {names[0]} in "
                                  f"{first.model_id}:{first.site}")
    v = torch.stack([d.normalized().vector for d in members]).mean(0)
    prov = first.provenance.merged(*[d.provenance for d in members[1:]])
    return first._with(v, origin="transported", method="ensemble:mean-of-units",
                       provenance=prov,
                       meta={"members": [{"source": (d.meta.get("source_direction") or {})
                                          .get("model_id"), "method": d.method,
                                          "norm": d.norm} for d in members]})


def ensemble(members: Sequence[Direction | DirectionSet],
             names: Sequence[str] | None = None) -> Direction | DirectionSet:
    """Per category, the mean of the members' unit vectors (all in one target space).

    Sets must hold the same categories; ``names`` label the members in errors (default
    ``#0``, ``#1``, ...)."""
    if not members:
        raise EmptyDataError("an ensemble needs at least one direction")
    names = list(names) if names is not None else [f"#{i}" for i in range(len(members))]
    if all(isinstance(m, Direction) for m in members):
        return _mean_of_units(list(members), names)  # type: ignore[arg-type]
    if not all(isinstance(m, DirectionSet) for m in members):
        raise ProvenanceError("an ensemble takes all Directions or all DirectionSets")
    sets: list[DirectionSet] = list(members)  # type: ignore[arg-type]
    cats = sets[0].categories
    for s, name in zip(sets[1:], names[1:], strict=True):
        if sorted(s.categories) != sorted(cats):
            raise ProvenanceError(f"ensemble members must hold the same categories: {name} has "
                                  f"{sorted(s.categories)}, {names[0]} {sorted(cats)}")
    return DirectionSet({c: _mean_of_units([s[c] for s in sets], names) for c in cats})

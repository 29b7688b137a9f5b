"""The ensemble of transported directions: per category the mean of unit vectors (planted), the
members' provenance kept, and members from different spaces or category sets refused."""

from __future__ import annotations

import pytest
import torch

from xsteer.data import data_record
from xsteer.directions import Direction, DirectionSet, ensemble
from xsteer.errors import DimensionMismatchError, EmptyDataError, ProvenanceError
from xsteer.provenance import Provenance

SITE = "layer:6/mean"


def _d(v: list[float], cat: str = "global", model: str = "t", site: str = SITE,
       data: str = "a") -> Direction:
    prov = Provenance([data_record(data, [data], side="source", unsafe=True)])
    return Direction(torch.tensor(v), model, site, category=cat, origin="transported",
                     provenance=prov)


def test_each_member_weighs_the_same_whatever_its_norm() -> None:
    e = ensemble([_d([10.0, 0.0, 0.0]), _d([0.0, 0.1, 0.0]), _d([0.0, 0.0, -3.0])])
    assert torch.allclose(e.vector, torch.tensor([1.0, 1.0, -1.0]) / 3)
    assert e.method == "ensemble:mean-of-units" and e.origin == "transported"
    assert [m["norm"] for m in e.meta["members"]] == pytest.approx([10.0, 0.1, 3.0])


def test_sets_combine_per_category_and_keep_every_members_data() -> None:
    a = DirectionSet({"global": _d([1.0, 0.0]), "sexual": _d([0.0, 2.0], "sexual")})
    b = DirectionSet({"global": _d([0.0, 4.0], data="b"),
                      "sexual": _d([0.0, -1.0], "sexual", data="b")})
    e = ensemble([a, b])
    assert isinstance(e, DirectionSet) and sorted(e.categories) == ["global", "sexual"]
    assert torch.allclose(e["global"].vector, torch.tensor([0.5, 0.5]))
    assert torch.allclose(e["sexual"].vector, torch.zeros(2))  # opposite members cancel
    assert {r.name for r in e["global"].provenance.data} == {"a", "b"}


def test_members_from_other_spaces_or_categories_fail_in_one_line() -> None:
    with pytest.raises(ProvenanceError, match="one space: gemma is in u:layer:6/mean"):
        ensemble([_d([1.0, 0.0]), _d([0.0, 1.0], model="u")], names=["qwen", "gemma"])
    with pytest.raises(DimensionMismatchError):
        ensemble([_d([1.0, 0.0]), _d([0.0, 1.0, 0.0])])
    with pytest.raises(ProvenanceError, match="same categories"):
        ensemble([DirectionSet({"global": _d([1.0, 0.0])}),
                  DirectionSet({"sexual": _d([1.0, 0.0], "sexual")})])
    with pytest.raises(EmptyDataError):
        ensemble([])
    with pytest.raises(ProvenanceError, match="all Directions or all DirectionSets"):
        ensemble([_d([1.0, 0.0]), DirectionSet({"global": _d([1.0, 0.0])})])

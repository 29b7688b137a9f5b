"""Planted-answer tests for the advanced transport maps: each recovers a planted linear map and
carries a planted direction; each saves, loads and plugs into `Alignment` by name."""

from __future__ import annotations

import pytest
import torch

from xsteer.align import (
    Alignment,
    AnchorMap,
    DirectionAwareMap,
    RelativeMap,
    WhitenRidgeMap,
    get_map_class,
    make_map,
    transport_pairs,
)
from xsteer.align.base import AlignmentConfigError
from xsteer.directions import Direction
from xsteer.provenance import DataRecord

DS, DT, N = 8, 5, 400


def planted(seed: int = 0, noise: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    # Uneven source scales, like LM states, plus an offset both sides (maps must centre).
    X = torch.randn(N, DS, generator=g) * torch.logspace(1, -0.5, DS) + 7.0
    W = torch.randn(DS, DT, generator=g)
    Y = X @ W + 3.0 + noise * torch.randn(N, DT, generator=g)
    d = torch.randn(DS, generator=g)
    return X, Y, W, d


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def linear_maps(d: torch.Tensor):
    tiny = [1e-9]
    return [
        WhitenRidgeMap(alphas=tiny, shrinkage=0.2),
        DirectionAwareMap(d.tolist(), mode="weight", alphas=tiny),
        DirectionAwareMap(d.tolist(), mode="subspace", rank=DS, alphas=tiny),
        RelativeMap(readout="ridge", alphas=tiny),
    ]


@pytest.mark.parametrize("idx", range(4))
def test_linear_transport_maps_recover_planted_map_and_direction(idx):
    X, Y, W, d = planted()
    m = linear_maps(d)[idx].fit(X, Y)
    assert torch.allclose(m.W_, W, atol=1e-3, rtol=1e-3), m
    assert cos(m.transport(d), d @ W) > 0.9999
    assert m.score(X[:50], Y[:50])["r2"] > 0.9999


def test_relative_readout_recovers_a_planted_similarity_map():
    # Anchor-similarity coordinates are preserved by rotations and one global scale (the premise
    # of relative representations), so the symmetric readout recovers exactly such a map.
    X, _, _, d = planted()
    g = torch.Generator().manual_seed(3)
    Q = torch.linalg.qr(torch.randn(DS, DS, generator=g))[0]
    Y = 2.5 * X @ Q - 1.0
    m = RelativeMap(readout="relative", ridge=1e-9).fit(X, Y)
    assert torch.allclose(m.W_, 2.5 * Q, atol=1e-3)
    assert cos(m.transport(d), d @ Q) > 0.9999
    sub = RelativeMap(readout="relative", n_anchors=50, ridge=1e-9).fit(X, Y)
    assert cos(sub.transport(d), d @ Q) > 0.999


def test_direction_aware_weighting_follows_anchors_that_spread_along_the_direction():
    # Two regimes: anchors far along d follow W1, the bulk near d's zero follows W2. Only the
    # former say how d itself should travel; weighting by projection must get closer to d @ W1.
    g = torch.Generator().manual_seed(1)
    X = torch.randn(800, DS, generator=g)
    d = torch.randn(DS, generator=g)
    z = X @ (d / d.norm())
    W1, W2 = torch.randn(DS, DT, generator=g), torch.randn(DS, DT, generator=g)
    far = (z.abs() > 1.5)[:, None]
    Y = torch.where(far, X @ W1, X @ W2)
    plain = make_map("ridge").fit(X, Y).transport(d)
    aware = DirectionAwareMap(d.tolist(), strength=20.0).fit(X, Y).transport(d)
    assert cos(aware, d @ W1) > cos(plain, d @ W1) + 0.05
    assert cos(aware, d @ W1) > 0.9


def test_subspace_mode_keeps_only_components_the_direction_loads_on():
    X, Y, W, _ = planted()
    Xc = X - X.mean(0)
    _, _, Vt = torch.linalg.svd(Xc, full_matrices=False)
    d = Vt[0] + 0.5 * Vt[3]  # lives in two principal components
    m = DirectionAwareMap(d.tolist(), mode="subspace", rank=2, alphas=[1e-9]).fit(X, Y)
    assert m.captured_ == pytest.approx(1.0, abs=1e-6)
    # a direction orthogonal to those two components is not carried at all
    assert float(m.transport(Vt[5]).norm()) < 1e-3 * float(m.transport(d).norm())
    assert cos(m.transport(d), d @ W) > 0.999


def test_anchor_map_contrast_and_pairs_transport_planted_direction():
    X, Y, W, d = planted(noise=0.0)
    top = AnchorMap(k=5, quantile=0.1).fit(X, Y)
    lin = AnchorMap(weighting="linear").fit(X, Y)
    # With isotropic-enough anchors the contrast points where the map sends d's anchors.
    C = (X - X.mean(0)).T @ (X - X.mean(0)) / N
    expect = (C @ d) @ W  # cross-covariance transport
    assert cos(lin.transport(d), expect) > 0.999
    assert cos(top.transport(d), expect) > 0.95
    # 1-NN regression returns an anchor's own target state for the anchor itself
    one = AnchorMap(k=1).fit(X, Y)
    assert torch.allclose(one.transform(X[:100]), Y[:100], atol=1e-4)
    assert top.score(X[:100], Y[:100])["r2"] > 0.8


def test_anchor_knn_carries_pair_differences_to_their_benign_neighbours():
    # Isotropic anchors; each pair straddles the cloud along d, so the kNN neighbours of its
    # safe and unsafe members differ along d and their target states differ along d @ W.
    g = torch.Generator().manual_seed(2)
    X = torch.randn(2000, 4, generator=g)
    W = torch.randn(4, 3, generator=g)
    Y = X @ W
    d = torch.tensor([1.0, 0.0, 0.0, 0.0])
    U = torch.randn(200, 4, generator=g) - d
    m = AnchorMap(k=10).fit(X, Y)
    assert cos(transport_pairs(m, U, U + 2 * d), d @ W) > 0.95


def test_transport_pairs_equals_linear_transport_of_mean_difference():
    X, Y, _, d = planted()
    m = make_map("ridge").fit(X, Y)
    g = torch.Generator().manual_seed(5)
    U = torch.randn(30, DS, generator=g)
    S = U + d + 0.1 * torch.randn(30, DS, generator=g)
    assert torch.allclose(transport_pairs(m, U, S), m.transport((S - U).mean(0)), atol=1e-4)


@pytest.mark.parametrize("name", ["whiten-ridge", "relative", "anchor-knn", "direction-aware"])
def test_registered_maps_round_trip_through_alignment_artifacts(name, tmp_path):
    X, Y, _, d = planted(noise=0.1)
    params = {"direction": d.tolist()} if name == "direction-aware" else {}
    rec = DataRecord.from_texts("benign", ["b"] * N, side="target", unsafe=False)
    al = Alignment.fit(X, Y, make_map(name, **params), source=("s", "p"), target=("t", "p"),
                       data=[rec])
    assert get_map_class(name).name == name
    al.save_pretrained(tmp_path / name)
    back = Alignment.load(tmp_path / name)
    assert torch.equal(back.transform(X[:20]), al.transform(X[:20]))
    src = Direction(d, model_id="s", site="p")
    moved = back.transport(src)
    assert not moved.provenance.saw_unsafe("target")
    assert torch.allclose(moved.vector, al.transport(src).vector)


def test_bad_parameters_name_the_problem():
    X, Y, _, d = planted()
    with pytest.raises(AlignmentConfigError, match="direction has 3 dims"):
        DirectionAwareMap([1.0, 0.0, 0.0]).fit(X, Y)
    with pytest.raises(AlignmentConfigError, match="non-zero"):
        DirectionAwareMap([0.0] * DS).fit(X, Y)
    with pytest.raises(AlignmentConfigError, match="mode"):
        DirectionAwareMap(d.tolist(), mode="nope").fit(X, Y)
    with pytest.raises(AlignmentConfigError, match="shrinkage"):
        WhitenRidgeMap(shrinkage=0.0).fit(X, Y)
    with pytest.raises(AlignmentConfigError, match="n_anchors"):
        RelativeMap(n_anchors=N + 1).fit(X, Y)
    with pytest.raises(AlignmentConfigError, match="weighting"):
        AnchorMap(weighting="x").fit(X, Y)
    with pytest.raises(AlignmentConfigError, match="k="):
        AnchorMap(k=N + 1).fit(X, Y)

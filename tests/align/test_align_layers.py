"""Layer/site selection on planted features: the layer that separates pairs wins, ties go early,
the benign-only spread criterion prefers layers that spread over more directions, and the
benign-only fidelity criterion picks the layer whose benign states predict the target."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from xsteer.align.layers import (
    best_layer,
    heldout_fidelity,
    pair_auroc_cv,
    participation_ratio,
    select_layer,
    select_site_by_fidelity,
)
from xsteer.encoders import Encoder
from xsteer.errors import EmptyDataError, XSteerError


class PlantedEncoder(Encoder):
    """Features per layer from a lookup: layer L gives planted[L][text]."""

    def __init__(self, planted: dict[int, dict[str, torch.Tensor]], dim: int) -> None:
        self.planted = planted
        self.model_id, self.revision, self.dim = "planted", None, dim
        self.num_layers, self.default_layer = max(planted), 1
        self.calls = 0

    def _compute(self, texts, layers, pooling, batch_size, progress):
        self.calls += 1
        return {layer: torch.stack([self.planted[layer][t] for t in texts]) for layer in layers}

    def encode_tokens(self, texts: Sequence[str], layer=None, max_length=77, batch_size=32,
                      progress=None):
        raise NotImplementedError


def test_participation_ratio_planted(gen):
    iso = torch.randn(2000, 8, generator=gen)
    assert participation_ratio(iso) == pytest.approx(8, rel=0.1)
    rank1 = torch.randn(200, 1, generator=gen) * torch.randn(1, 8, generator=gen)
    assert participation_ratio(rank1) == pytest.approx(1, abs=1e-6)


def test_pair_auroc_cv_planted(gen):
    U = torch.randn(40, 6, generator=gen)
    S = U + torch.tensor([8.0, 0, 0, 0, 0, 0])
    assert pair_auroc_cv(U, S) == 1.0
    noise = pair_auroc_cv(torch.randn(40, 6, generator=gen), torch.randn(40, 6, generator=gen))
    assert 0.2 < noise < 0.8


def test_best_layer_breaks_ties_toward_earlier():
    assert best_layer({3: 1.0, 1: 1.0, 2: 0.5}) == 1
    assert best_layer({1: 0.9, 2: 0.95}) == 2


def test_select_layer_with_pairs_picks_the_separating_layer(gen):
    n, dim = 30, 5
    unsafe = [f"u{i}" for i in range(n)]
    safe = [f"s{i}" for i in range(n)]
    planted: dict[int, dict[str, torch.Tensor]] = {}
    for layer, shift in ((1, 0.0), (2, 4.0), (3, 0.3)):
        U = torch.randn(n, dim, generator=gen)
        S = torch.randn(n, dim, generator=gen) + shift * torch.eye(dim)[0]
        planted[layer] = dict(zip(unsafe + safe, torch.cat([U, S]), strict=True))
    enc = PlantedEncoder(planted, dim)
    layer, scores = select_layer(enc, unsafe=unsafe, safe=safe)
    assert layer == 2 and set(scores) == {1, 2, 3}
    assert scores[2] > 0.95 and max(scores[1], scores[3]) < 0.85
    assert enc.calls == 1  # every candidate layer from one pass


def test_select_layer_benign_only_prefers_spread(gen):
    n, dim = 200, 6
    benign = [f"b{i}" for i in range(n)]
    low = torch.randn(n, 1, generator=gen) * torch.randn(1, dim, generator=gen)
    high = torch.randn(n, dim, generator=gen)
    enc = PlantedEncoder({1: dict(zip(benign, low, strict=True)),
                          2: dict(zip(benign, high, strict=True))}, dim)
    layer, scores = select_layer(enc, benign=benign)
    assert layer == 2 and scores[2] > 4 * scores[1]


def test_select_layer_needs_data_and_whole_pairs():
    enc = PlantedEncoder({1: {}}, 2)
    with pytest.raises(XSteerError, match="benign prompts or safe/unsafe pairs"):
        select_layer(enc)
    with pytest.raises(XSteerError, match="both unsafe and safe"):
        select_layer(enc, unsafe=["a"])
    with pytest.raises(XSteerError, match="pair up"):
        select_layer(enc, unsafe=["a"], safe=["b", "c"])


def test_select_site_prefers_the_informative_layer_and_reports_every_score():
    g = torch.Generator().manual_seed(0)
    Y = torch.randn(300, 4, generator=g)
    mix = torch.randn(4, 6, generator=g)
    feats = {
        3: torch.randn(300, 6, generator=g),  # unrelated
        6: Y @ mix + 0.5 * torch.randn(300, 6, generator=g),  # noisy view
        9: Y @ mix,  # exact view
    }
    best, scores = select_site_by_fidelity(feats, Y)
    assert best == 9 and set(scores) == {3, 6, 9}
    assert scores[9] > scores[6] > scores[3]
    assert scores[3] < 0.1
    best_top1, _ = select_site_by_fidelity(feats, Y, criterion="top1")
    assert best_top1 == 9


def test_heldout_fidelity_is_null_for_noise_and_validates():
    g = torch.Generator().manual_seed(1)
    r = heldout_fidelity(torch.randn(200, 5, generator=g), torch.randn(200, 3, generator=g))
    assert r["r2"] < 0.05
    with pytest.raises(XSteerError, match="criterion"):
        select_site_by_fidelity({1: torch.zeros(10, 2)}, torch.zeros(10, 2), criterion="auc")
    with pytest.raises(EmptyDataError):
        select_site_by_fidelity({}, torch.zeros(10, 2))

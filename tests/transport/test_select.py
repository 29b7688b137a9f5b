"""Benign-only site selection picks the layer whose benign states predict the target."""

from __future__ import annotations

import pytest
import torch

from xsteer.errors import EmptyDataError, XSteerError
from xsteer.transport import heldout_fidelity, select_site


def test_select_site_prefers_the_informative_layer_and_reports_every_score():
    g = torch.Generator().manual_seed(0)
    Y = torch.randn(300, 4, generator=g)
    mix = torch.randn(4, 6, generator=g)
    feats = {
        3: torch.randn(300, 6, generator=g),  # unrelated
        6: Y @ mix + 0.5 * torch.randn(300, 6, generator=g),  # noisy view
        9: Y @ mix,  # exact view
    }
    best, scores = select_site(feats, Y)
    assert best == 9 and set(scores) == {3, 6, 9}
    assert scores[9] > scores[6] > scores[3]
    assert scores[3] < 0.1
    best_top1, _ = select_site(feats, Y, criterion="top1")
    assert best_top1 == 9


def test_heldout_fidelity_is_null_for_noise_and_validates():
    g = torch.Generator().manual_seed(1)
    r = heldout_fidelity(torch.randn(200, 5, generator=g), torch.randn(200, 3, generator=g))
    assert r["r2"] < 0.05
    with pytest.raises(XSteerError, match="criterion"):
        select_site({1: torch.zeros(10, 2)}, torch.zeros(10, 2), criterion="auc")
    with pytest.raises(EmptyDataError):
        select_site({}, torch.zeros(10, 2))

"""Pooling math on planted token states: BOS dropping, last real token, mean over the mask."""

from __future__ import annotations

import pytest
import torch

from xsteer.encoders.pooling import last_index, pool, pooled_mask
from xsteer.errors import XSteerError

BOS = 7


def test_pooled_mask_drops_leading_bos_under_either_padding_side():
    ids = torch.tensor([[BOS, 5, 6, 0], [0, BOS, 5, 6], [5, 6, 0, 0]])
    att = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]])
    m = pooled_mask(ids, att, BOS, drop_bos=True)
    assert m.tolist() == [[False, True, True, False], [False, False, True, True],
                          [True, True, False, False]]  # row 3 has no BOS: untouched
    assert torch.equal(pooled_mask(ids, att, BOS, drop_bos=False), att.bool())


def test_pooled_mask_keeps_a_lone_bos():
    ids = torch.tensor([[BOS, 0, 0]])
    m = pooled_mask(ids, torch.tensor([[1, 0, 0]]), BOS, drop_bos=True)
    assert m.tolist() == [[True, False, False]]


def test_last_index_finds_last_real_token():
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 1]]).bool()
    assert last_index(mask).tolist() == [2, 2, 0, 3]


def test_pool_mean_and_last_match_hand_computation(gen):
    E = torch.randn(3, 5, 4, generator=gen)
    mask = torch.tensor([[0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]).bool()
    mean = pool(E, mask, "mean")
    last = pool(E, mask, "last")
    torch.testing.assert_close(mean[0], E[0, 1:4].mean(0))
    torch.testing.assert_close(mean[1], E[1, :2].mean(0))
    torch.testing.assert_close(mean[2], E[2].mean(0))
    assert torch.equal(last, torch.stack([E[0, 3], E[1, 1], E[2, 4]]))


def test_unknown_pooling_is_refused():
    with pytest.raises(XSteerError, match="unknown pooling 'max'"):
        pool(torch.zeros(1, 2, 3), torch.ones(1, 2).bool(), "max")

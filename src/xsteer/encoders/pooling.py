"""Pooling token states into one vector per text: pure functions on ``(n, L, dim)`` tensors.

The mask passed around is the *pooled* mask: real tokens, minus a dropped BOS. Keeping it
explicit makes ``masked_mean(encode_tokens(...))`` equal ``encode(..., pooling="mean")`` by
construction, and lets "last" find the last real token under either padding side.

>>> import torch
>>> E = torch.arange(6.0).reshape(1, 3, 2); m = torch.tensor([[1, 1, 0]])
>>> pool(E, m, "mean").tolist(), pool(E, m, "last").tolist()
([[1.0, 2.0]], [[2.0, 3.0]])
"""

from __future__ import annotations

import torch

from xsteer.errors import XSteerError
from xsteer.tensors import masked_mean

POOLINGS: tuple[str, ...] = ("mean", "last")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise XSteerError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")
    return pooling


def pooled_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                bos_token_id: int | None, drop_bos: bool) -> torch.Tensor:
    """The tokens to pool: attended tokens, without a leading BOS when ``drop_bos``.

    A BOS is dropped only where the row's first real token *is* the BOS id, so tokenizers that
    add none are untouched; a row that holds only a BOS keeps it rather than pooling nothing.
    """
    mask = attention_mask.to(torch.bool).clone()
    if not drop_bos or bos_token_id is None or mask.shape[1] == 0:
        return mask
    rows = torch.arange(mask.shape[0])
    first = mask.to(torch.int64).argmax(dim=1)  # first real position (left or right padding)
    is_bos = (input_ids[rows, first] == bos_token_id) & mask[rows, first]
    droppable = is_bos & (mask.sum(dim=1) > 1)
    mask[rows[droppable], first[droppable]] = False
    return mask


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Position of the last True of each row of a ``(n, L)`` mask (0 for an all-False row)."""
    L = mask.shape[1]
    return (L - 1 - mask.to(torch.int64).flip(dims=[1]).argmax(dim=1)).clamp(min=0)


def pool(states: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool ``(n, L, dim)`` states over the tokens in ``mask`` ("mean" or "last" real token)."""
    check_pooling(pooling)
    if pooling == "mean":
        return masked_mean(states, mask)
    idx = last_index(mask)
    return states[torch.arange(states.shape[0]), idx]

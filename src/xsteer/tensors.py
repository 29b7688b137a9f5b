"""Low-level tensor helpers shared by several layers (encoders, steering, pipelines).

Nothing here imports another xsteer module, so any package may import it.

>>> import torch
>>> masked_mean(torch.tensor([[[1.0], [3.0], [100.0]]]), torch.tensor([[1, 1, 0]])).tolist()
[[2.0]]
"""

from __future__ import annotations

import torch


def masked_mean(E: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the token axis of ``(n, L, dim)`` states, counting only real tokens."""
    if E.ndim == 2:
        return E
    if mask is None:
        return E.mean(dim=-2)
    m = mask.to(E.dtype).unsqueeze(-1)
    return (E * m).sum(-2) / m.sum(-2).clamp(min=1)

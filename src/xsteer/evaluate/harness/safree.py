"""SAFREE-style token projection (Yoon et al., 2025), the training-free baseline, as pure functions.

What is kept from SAFREE: (1) a toxic subspace spanned by the embeddings of toxic concept phrases;
(2) trigger-token detection: a token is a trigger when leaving it out moves the prompt's pooled
embedding markedly *away* from the toxic subspace (the leave-one-out distance, measured as the sine
of the angle between the pooled embedding and the subspace, exceeds the mean over the prompt's
tokens by ``alpha`` standard deviations); (3) trigger tokens are projected
onto the orthogonal complement of the toxic subspace. What is omitted (say so beside any number):
the projection into the input-token span, the self-validating filter that picks denoising steps,
and latent re-attention in the Fourier domain.

>>> import torch
>>> E = torch.zeros(1, 4, 3); E[0, :, 1] = 1.0; E[0, 2, 0] = 5.0   # token 2 is toxic (axis 0)
>>> out, trig = safree_project(E, None, torch.tensor([[1.0, 0, 0]]))
>>> trig[0].tolist(), out[0, 2].tolist()
([False, False, True, False], [0.0, 1.0, 0.0])
"""

from __future__ import annotations

import torch

from xsteer.errors import DimensionMismatchError
from xsteer.steer.operators import orthonormal_basis


def _residual_norm(X: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``||(I - P_C) x||`` for each row of ``X`` (``B``: orthonormal rows spanning C)."""
    return (X - (X @ B.T) @ B).norm(dim=-1)


def trigger_tokens(E: torch.Tensor, mask: torch.Tensor | None, C: torch.Tensor,
                   alpha: float = 0.01) -> torch.Tensor:
    """Boolean ``(n, L)``: which real tokens SAFREE would project (see the module docstring)."""
    if E.ndim != 3:
        raise DimensionMismatchError("SAFREE states rank", E.ndim, "(n, L, dim) token states", 3)
    if C.shape[-1] != E.shape[-1]:
        raise DimensionMismatchError("toxic subspace", C.shape[-1], "token states", E.shape[-1])
    B = orthonormal_basis(C.to(E.dtype))
    m = torch.ones(E.shape[:2], dtype=torch.bool, device=E.device) if mask is None \
        else mask.to(E.device).bool()
    out = torch.zeros_like(m)
    for i in range(E.shape[0]):
        idx = m[i].nonzero().squeeze(-1)
        if idx.numel() < 3:  # too few tokens for a spread to mean anything
            continue
        X = E[i, idx].double()
        loo = X.sum(0, keepdim=True) - X  # pooled prompt without token j (scale irrelevant)
        # distance of the *direction* to the subspace (sine of the angle): a raw residual norm
        # ignores the toxic component entirely when C is spanned by axes the token moves along
        loo = loo / loo.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        r = _residual_norm(loo, B.double().to(X.device))
        std = r.std()
        if float(std) == 0.0:
            continue
        out[i, idx] = r > r.mean() + alpha * std
    return out


def safree_project(E: torch.Tensor, mask: torch.Tensor | None, C: torch.Tensor,
                   strength: float = 1.0,
                   alpha: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Project trigger tokens of ``E`` ``(n, L, dim)`` off the span of ``C`` ``(k, dim)``.

    ``strength`` interpolates (0: unchanged, 1: full projection). Returns (states, triggers);
    non-trigger tokens are returned bit-identical.
    """
    trig = trigger_tokens(E, mask, C, alpha)
    B = orthonormal_basis(C.to(E.dtype)).to(E.device)
    projected = E - (E @ B.T) @ B
    new = E + float(strength) * (projected - E)
    return torch.where(trig.unsqueeze(-1), new, E), trig

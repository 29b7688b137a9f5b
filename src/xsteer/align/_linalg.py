"""Small linear-algebra helpers shared by the transport maps (float64, benign-centred inputs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from xsteer.align.base import AlignmentConfigError
from xsteer.align.linear import RidgeMap


def ridge_cv(Xc: torch.Tensor, Yc: torch.Tensor, alphas: Sequence[float], cv: int | None,
             seed: int) -> tuple[torch.Tensor, float]:
    """Ridge with the relative penalty chosen by `RidgeMap`'s cross-validation; ``(W, alpha)``.

    Inputs are already centred; `RidgeMap` centres again, which is a no-op up to rounding.
    """
    m = RidgeMap(alphas=alphas, cv=cv, seed=seed).fit(Xc, Yc)
    return m.W_.to(torch.float64), float(m.alpha_)


def unit(v: torch.Tensor, what: str = "direction") -> torch.Tensor:
    """``v / ||v||``; a zero vector is refused (it has no direction to focus on)."""
    n = float(v.norm())
    if not n > 0:
        raise AlignmentConfigError(f"{what} must be a non-zero vector")
    return v / n


def shrunk_inverse_sqrt(Xc: torch.Tensor, shrinkage: float) -> torch.Tensor:
    """``C_s^{-1/2}`` for the shrunk covariance ``(1 - a) C + a (tr C / d) I`` of centred rows.

    Shrinkage keeps the whitening finite when ``n < d`` and stops noise directions with tiny
    benign variance from being blown up (Ledoit-Wolf style target, fixed ``a``).
    """
    if not 0.0 < shrinkage <= 1.0:
        raise AlignmentConfigError(f"whitening shrinkage must be in (0, 1], got {shrinkage}")
    n, d = Xc.shape
    C = Xc.T @ Xc / max(n - 1, 1)
    C = (1.0 - shrinkage) * C + shrinkage * (torch.trace(C) / d) * torch.eye(d, dtype=Xc.dtype)
    evals, evecs = torch.linalg.eigh(C)
    return (evecs * evals.clamp_min(torch.finfo(Xc.dtype).tiny).rsqrt()) @ evecs.T

"""Steering operators: pure functions on token states ``E`` of shape ``(..., L, dim)`` or ``(..., dim)``.

All operators broadcast a direction ``d`` of shape ``(dim,)`` over every leading axis. An optional
``mask`` of shape ``E.shape[:-1]`` (1 = real token) restricts the change to real tokens; masked-out
positions are returned bit-identical. Linear operators commute with mean pooling, so steering every
token by ``alpha d`` shifts the mean-pooled embedding by exactly ``alpha d``.

>>> import torch
>>> E = torch.zeros(2, 3, 4); d = torch.tensor([1.0, 0, 0, 0])
>>> additive(E, d, 0.5)[0, 0].tolist()
[0.5, 0.0, 0.0, 0.0]
>>> project_out(torch.ones(4), d).tolist()
[0.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import torch

from xsteer.errors import DimensionMismatchError, NonFiniteError


def _vec(d: torch.Tensor, E: torch.Tensor, what: str = "direction") -> torch.Tensor:
    d = torch.as_tensor(d)
    if d.ndim != 1:
        raise DimensionMismatchError(f"{what} rank", d.ndim, "a steering direction", 1)
    if d.shape[0] != E.shape[-1]:
        raise DimensionMismatchError(what, d.shape[0], "steered states", E.shape[-1])
    return d.to(device=E.device, dtype=E.dtype)


def _unit(d: torch.Tensor) -> torch.Tensor:
    n = d.norm()
    if not torch.isfinite(n) or float(n) == 0.0:
        raise NonFiniteError("steering direction is zero or non-finite")
    return d / n


def _masked(E: torch.Tensor, new: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return new
    m = torch.as_tensor(mask, device=E.device).bool()
    if tuple(m.shape) != tuple(E.shape[:-1]):
        raise DimensionMismatchError("mask rank/shape", m.ndim, "states without last axis",
                                     E.ndim - 1, hint=f"mask {tuple(m.shape)} vs E {tuple(E.shape)}")
    return torch.where(m.unsqueeze(-1), new, E)


def additive(E: torch.Tensor, d: torch.Tensor, strength: float,
             mask: torch.Tensor | None = None) -> torch.Tensor:
    """``E + strength * d`` on every (real) token."""
    d = _vec(d, E)
    if strength == 0:
        return E
    return _masked(E, E + strength * d, mask)


def project_out(E: torch.Tensor, d: torch.Tensor, mask: torch.Tensor | None = None,
                center: torch.Tensor | None = None) -> torch.Tensor:
    """Remove the component along ``d`` (measured from ``center``, default the origin)."""
    u = _unit(_vec(d, E))
    c = torch.zeros_like(u) if center is None else _vec(center, E, "center")
    coef = ((E - c) @ u).unsqueeze(-1)
    return _masked(E, E - coef * u, mask)


def clamp_along(E: torch.Tensor, d: torch.Tensor, minimum: float,
                mask: torch.Tensor | None = None,
                center: torch.Tensor | None = None) -> torch.Tensor:
    """Raise the coordinate along unit ``d`` (from ``center``) to at least ``minimum``.

    With ``d`` pointing unsafe→safe, a prompt whose coordinate is below ``minimum`` (too far on the
    unsafe side) is moved to ``minimum``; others are untouched (bit-identical).
    """
    u = _unit(_vec(d, E))
    c = torch.zeros_like(u) if center is None else _vec(center, E, "center")
    coef = (E - c) @ u
    delta = (minimum - coef).clamp(min=0).unsqueeze(-1)
    moved = E + delta * u
    need = (coef < minimum)
    if mask is not None:
        need = need & torch.as_tensor(mask, device=E.device).bool()
    return torch.where(need.unsqueeze(-1), moved, E)


def orthonormal_basis(D: torch.Tensor, tol: float = 1e-6) -> torch.Tensor:
    """Orthonormal rows spanning the rows of ``D`` (k, dim), dropping dependent ones."""
    Q, R = torch.linalg.qr(D.double().T)
    keep = R.diagonal().abs() > tol * max(1.0, float(R.diagonal().abs().max()))
    return Q[:, keep].T.to(D.dtype)


def project_out_subspace(E: torch.Tensor, D: torch.Tensor, mask: torch.Tensor | None = None,
                         center: torch.Tensor | None = None) -> torch.Tensor:
    """Remove the components in the span of the rows of ``D`` (a category subspace)."""
    D = torch.as_tensor(D).to(device=E.device, dtype=E.dtype)
    if D.ndim != 2 or D.shape[1] != E.shape[-1]:
        raise DimensionMismatchError("subspace width", D.shape[-1], "steered states", E.shape[-1])
    B = orthonormal_basis(D)
    c = torch.zeros(E.shape[-1], dtype=E.dtype, device=E.device) if center is None else center
    coefs = (E - c) @ B.T
    return _masked(E, E - coefs @ B, mask)


def harm_score(X: torch.Tensor, d: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """How far each pooled embedding lies on the unsafe side along unit ``d``: ``(center - x) . u``.

    Higher means more unsafe (directions point unsafe→safe).
    """
    u = _unit(_vec(d, X))
    return (_vec(center, X, "center") - X) @ u

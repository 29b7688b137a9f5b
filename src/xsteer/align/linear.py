"""Linear alignment maps: ridge regression and PCA + orthogonal Procrustes.

Both learn ``W`` of shape ``(ds, dt)`` on benign-centred features, so that
``transform(X) = (X - mu_x) @ W + mu_y`` and a direction travels as ``transport(v) = v @ W``
(``W^T v`` in column notation: the offsets cancel for a difference of features).

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(200, 6, generator=g); Q = torch.linalg.qr(torch.randn(6, 6, generator=g))[0]
>>> m = ProcrustesMap().fit(X, X @ Q)
>>> bool(torch.allclose(m.W_, Q, atol=1e-4))
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from xsteer.align.base import AlignmentConfigError, AlignmentMap, need_shape

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-3, 4, 15))


class LinearMap(AlignmentMap):
    """Shared behaviour of maps whose learned part is one matrix ``W_`` ``(ds, dt)``."""

    W_: torch.Tensor

    def _predict(self, X: torch.Tensor) -> torch.Tensor:
        return (X - self.mu_x_) @ self.W_ + self.mu_y_

    def _transport(self, v: torch.Tensor) -> torch.Tensor:
        return v @ self.W_

    def state_dict_(self) -> dict[str, torch.Tensor]:
        return {**super().state_dict_(), "W": self.W_}

    def _load_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        super()._load_state(tensors)
        self.W_ = need_shape(tensors, "W", self.name, (self.in_dim, self.out_dim))


def _svd(Xc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD keeping only numerically non-zero singular values (centring costs one)."""
    U, s, Vt = torch.linalg.svd(Xc, full_matrices=False)
    keep = s > s[0] * max(Xc.shape) * torch.finfo(Xc.dtype).eps if s.numel() else s > 0
    return U[:, keep], s[keep], Vt[keep]


def _gram_basis(Xc: torch.Tensor, Yc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Singular values ``s``, right vectors ``V`` and ``U^T Yc`` of ``Xc`` from its Gram matrix.

    Cross-validation only needs these, and ``eigh(Xc^T Xc)`` is ~3x faster than an SVD of
    ``Xc``; it squares the condition number, so directions below ``sqrt(eps)`` of the top
    singular value are dropped, which any penalty in the grid shrinks to zero anyway. The final
    fit uses the exact SVD.
    """
    w, V = torch.linalg.eigh(Xc.T @ Xc)
    keep = w > float(w.max()) * max(Xc.shape) * torch.finfo(Xc.dtype).eps
    s, V = w[keep].sqrt(), V[:, keep]
    return s, V, (V.T @ (Xc.T @ Yc)) / s[:, None]


class RidgeMap(LinearMap):
    """Multi-output ridge regression, closed form by SVD, penalty chosen by cross-validation.

    Args:
        alphas: candidate penalties. With ``relative=True`` (default) each is multiplied by the mean
            squared feature norm per dimension, ``||Xc||_F^2 / ds``, so the same grid suits MiniLM
            (norm ~1) and Gemma (norms in the thousands); ``penalty_`` records the absolute value.
        cv: number of folds, or ``None`` for exact leave-one-out (one SVD, closed-form LOO residuals
            through the hat-matrix diagonal, intercept included).
        relative: scale ``alphas`` as above, or use them as absolute penalties.
        seed: fold assignment.

    Learned: ``W_``, ``alpha_`` (the chosen grid value), ``penalty_`` (absolute), ``cv_errors_``
    (mean squared validation error per alpha).
    """

    name = "ridge"

    def __init__(self, alphas: Sequence[float] = DEFAULT_ALPHAS, cv: int | None = 5,
                 relative: bool = True, seed: int = 0) -> None:
        self.alphas = tuple(float(a) for a in alphas)
        self.cv = cv
        self.relative = relative
        self.seed = seed

    def params_(self) -> dict[str, Any]:
        return {"alphas": list(self.alphas), "cv": self.cv, "relative": self.relative,
                "seed": self.seed}

    def _check_params(self) -> None:
        if not self.alphas or any(not np.isfinite(a) or a < 0 for a in self.alphas):
            raise AlignmentConfigError(f"ridge alphas must be finite and >= 0, got {self.alphas}")
        if self.cv is not None and int(self.cv) < 2:
            raise AlignmentConfigError(f"ridge cv must be >= 2 folds or None (LOO), got {self.cv}")

    def _scale(self, Xc: torch.Tensor) -> float:
        return float((Xc**2).sum()) / Xc.shape[1] if self.relative else 1.0

    def _fit_centered(self, Xc: torch.Tensor, Yc: torch.Tensor, mu_x: torch.Tensor,
                      mu_y: torch.Tensor) -> None:
        self._check_params()
        alphas = torch.tensor(self.alphas, dtype=torch.float64)
        if len(self.alphas) == 1:
            errors = torch.zeros(1, dtype=torch.float64)
        elif self.cv is None:
            errors = self._loo_errors(Xc, Yc, alphas)
        else:
            errors = self._kfold_errors(Xc, Yc, alphas)
        best = int(torch.argmin(errors))
        U, s, Vt = _svd(Xc)
        penalty = float(alphas[best]) * self._scale(Xc)
        # W = V diag(s / (s^2 + lambda)) U^T Yc : the ridge solution written in the SVD basis.
        W = Vt.T @ ((s / (s**2 + penalty))[:, None] * (U.T @ Yc))
        self.W_ = W.to(torch.float32)
        self.alpha_ = float(alphas[best])
        self.penalty_ = penalty
        self.cv_errors_ = errors.to(torch.float32)

    def _loo_errors(self, Xc: torch.Tensor, Yc: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        n = Xc.shape[0]
        s, V, UtY = _gram_basis(Xc, Yc)
        U = (Xc @ V) / s
        out = torch.empty(len(alphas), dtype=torch.float64)
        scale = self._scale(Xc)
        for i, a in enumerate(alphas):
            shrink = s**2 / (s**2 + a * scale)
            # The unpenalised intercept adds 1/n to every hat diagonal (centred X is orthogonal to 1).
            h = 1.0 / n + (U**2) @ shrink
            resid = (Yc - U @ (shrink[:, None] * UtY)) / (1.0 - h).clamp_min(1e-12)[:, None]
            out[i] = (resid**2).mean()
        return out

    def _kfold_errors(self, Xc: torch.Tensor, Yc: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        n = Xc.shape[0]
        k = min(int(self.cv or 2), n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        folds = torch.arange(n)[perm] % k
        sse = torch.zeros(len(alphas), dtype=torch.float64)
        for f in range(k):
            tr, va = folds != f, folds == f
            mx, my = Xc[tr].mean(0), Yc[tr].mean(0)
            s, V, G = _gram_basis(Xc[tr] - mx, Yc[tr] - my)
            scale = self._scale(Xc[tr] - mx)
            P = (Xc[va] - mx) @ V  # validation rows in the training singular basis
            R = Yc[va] - my
            # Prediction for penalty lam is P diag(c) G with c = s / (s^2 + lam), so
            # SSE(c) = ||R||^2 - 2 c.(rowsum((P^T R) * G)) + c^T ((P^T P) * (G G^T)) c:
            # the n x d x dt products are paid once per fold, each alpha costs only d^2.
            cross = ((P.T @ R) * G).sum(dim=1)
            quad = (P.T @ P) * (G @ G.T)
            base = float((R**2).sum())
            for i, a in enumerate(alphas):
                c = s / (s**2 + a * scale)
                sse[i] += base - 2.0 * float(c @ cross) + float(c @ quad @ c)
        return sse / (n * Yc.shape[1])

    def _load_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        super()._load_state(tensors)
        if "alpha" in tensors:
            self.alpha_ = float(tensors["alpha"])
            self.penalty_ = float(tensors["penalty"]) if "penalty" in tensors else float("nan")

    def state_dict_(self) -> dict[str, torch.Tensor]:
        out = super().state_dict_()
        if hasattr(self, "alpha_"):
            out["alpha"] = torch.tensor(self.alpha_, dtype=torch.float32)
            out["penalty"] = torch.tensor(self.penalty_, dtype=torch.float32)
        return out


def orthogonal_procrustes(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``R = argmin ||A R - B||_F`` over orthogonal ``R``, and the sum of singular values of ``A^T B``.

    The same answer as ``scipy.linalg.orthogonal_procrustes`` (checked in the tests), computed
    with torch so it honours ``torch.set_num_threads``: scipy's OpenBLAS threads took 6 s instead
    of 0.05 s for a 384x384 SVD on a busy 2-core machine.
    """
    U, s, Vt = torch.linalg.svd(A.T @ B)
    return U @ Vt, float(s.sum())


class ProcrustesMap(LinearMap):
    """PCA both sides to a common rank ``k``, then an orthogonal rotation with one global scale.

    ``W = P_x D_x (c R) D_y^-1 P_y^T`` in ``(ds, dt)`` layout, where ``P`` are the top-``k``
    principal axes, ``R`` solves the orthogonal Procrustes problem between the PCA coordinates
    (`orthogonal_procrustes`), ``c`` is the least-squares global scale and ``D`` are
    the whitening scales (identity unless ``whiten=True``). It keeps geometry: distances and angles
    in the source's top-k subspace survive up to one scale, which suits directions.

    Args:
        rank: ``k``; default ``min(ds, dt, n - 1)`` (PCA of n centred rows has at most n-1 axes).
        whiten: scale every PCA coordinate to unit variance before rotating (undone on the target
            side), so a few dominant components (Gemma's top PC holds ~25% of the variance) do not
            decide the rotation alone.
    """

    name = "procrustes"

    def __init__(self, rank: int | None = None, whiten: bool = False) -> None:
        self.rank = rank
        self.whiten = whiten

    def params_(self) -> dict[str, Any]:
        return {"rank": self.rank, "whiten": self.whiten}

    def _fit_centered(self, Xc: torch.Tensor, Yc: torch.Tensor, mu_x: torch.Tensor,
                      mu_y: torch.Tensor) -> None:
        n, ds = Xc.shape
        dt = Yc.shape[1]
        limit = min(ds, dt, n - 1)
        k = limit if self.rank is None else int(self.rank)
        if not 1 <= k <= limit:
            raise AlignmentConfigError(
                f"procrustes rank {k} is out of range: must be in 1..min(ds={ds}, dt={dt}, n-1={n - 1})")
        _, sx, Vxt = torch.linalg.svd(Xc, full_matrices=False)
        _, sy, Vyt = torch.linalg.svd(Yc, full_matrices=False)
        Px, Py = Vxt[:k].T, Vyt[:k].T
        Zx, Zy = Xc @ Px, Yc @ Py
        if self.whiten:
            tiny = torch.finfo(torch.float64).eps * max(float(sx[0]), float(sy[0]), 1.0)
            dx = (n - 1) ** 0.5 / sx[:k].clamp_min(tiny)
            dy = sy[:k] / (n - 1) ** 0.5
        else:
            dx = torch.ones(k, dtype=torch.float64)
            dy = torch.ones(k, dtype=torch.float64)
        Zx, Zy = Zx * dx, Zy / dy
        R, sigma_sum = orthogonal_procrustes(Zx, Zy)
        denom = float((Zx**2).sum())
        scale = sigma_sum / denom if denom > 0 else 0.0
        W = (Px * dx) @ (scale * R) @ (dy[:, None] * Py.T)
        self.W_ = W.to(torch.float32)
        self.rank_ = k
        self.scale_ = scale

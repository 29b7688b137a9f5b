"""The reference paper's "SVD alignment", made precise: reduced-rank (ridge) regression.

The paper (Poppi et al., 2026) reports every headline number with an "SVD" map fitted on benign
anchors. xsteer reads that as reduced-rank regression through an SVD, the rank chosen on held-out
anchors (Izenman 1975; with a ridge penalty, Mukherjee & Zhu 2011, "Reduced rank ridge
regression and its kernel extensions"). On benign-centred anchors ``Xc`` ``(n, ds)``, ``Yc``
``(n, dt)``:

    W_ridge = (Xc^T Xc + lam I)^{-1} Xc^T Yc                       (ridge; lam as `RidgeMap`)
    Xc W_ridge = U S V^T                                             (SVD of the fitted anchors)
    W_k = W_ridge V_k V_k^T                                           (rank-k map, k = argmin CV)

With ``lam = 0`` the ``V_k`` are the top right singular vectors of the whitened cross-covariance
``(Xc^T Xc)^{-1/2} Xc^T Yc``, which is what "an SVD of the anchors' cross-covariance" means once
the source is whitened; ``W_k`` is then the least-squares map among all maps of rank ``k``.
Unlike `ProcrustesMap` (PCA both sides, then a scaled rotation: it keeps source geometry and
has no rank chosen by data) this map keeps only the ``k`` target directions the source can
predict, so a direction is carried by its predictable part alone.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(400, 8, generator=g)
>>> W = torch.randn(8, 2, generator=g) @ torch.randn(2, 6, generator=g)   # a rank-2 map
>>> m = SVDMap().fit(X, X @ W + 0.1 * torch.randn(400, 6, generator=g))
>>> m.rank_
2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from xsteer.align.base import AlignmentConfigError
from xsteer.align.linear import DEFAULT_ALPHAS, LinearMap, RidgeMap


def _ridge(Xc: torch.Tensor, Yc: torch.Tensor, penalty: float) -> torch.Tensor:
    """``(Xc^T Xc + penalty I)^{-1} Xc^T Yc`` through the SVD of ``Xc`` (float64)."""
    U, s, Vt = torch.linalg.svd(Xc, full_matrices=False)
    return Vt.T @ ((s / (s**2 + penalty))[:, None] * (U.T @ Yc))


def _right_vectors(Xc: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Right singular vectors ``V`` ``(dt, r)`` of the fitted values ``Xc W``, largest first."""
    _, _, Vt = torch.linalg.svd(Xc @ W, full_matrices=False)
    return Vt.T


def rank_cv_errors(Xc: torch.Tensor, Yc: torch.Tensor, relative_alpha: float, folds: int,
                   seed: int) -> torch.Tensor:
    """Mean squared held-out error of the rank-``k`` map for every ``k = 1..r`` (index ``k-1``).

    Each fold refits ridge and the SVD on its training rows; the validation error of every rank
    comes from one projection: with ``Z = P V`` (``P`` the validation predictions) and ``V``
    orthonormal, ``||R - Z_k V_k^T||^2 = ||R||^2 - 2 sum_{j<=k} (R V)_j . Z_j + sum_{j<=k} ||Z_j||^2``.
    """
    n = Xc.shape[0]
    k = min(folds, n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    fold_of = torch.empty(n, dtype=torch.long)
    fold_of[perm] = torch.arange(n) % k
    r = min(Xc.shape[1], Yc.shape[1], n - 1 - (n // k + 1))
    sse = torch.zeros(max(r, 1), dtype=torch.float64)
    for f in range(k):
        tr, va = fold_of != f, fold_of == f
        mx, my = Xc[tr].mean(0), Yc[tr].mean(0)
        Xt, Yt = Xc[tr] - mx, Yc[tr] - my
        penalty = relative_alpha * float((Xt**2).sum()) / Xt.shape[1]
        W = _ridge(Xt, Yt, penalty)
        V = _right_vectors(Xt, W)[:, :r]
        Z = ((Xc[va] - mx) @ W) @ V
        R = Yc[va] - my
        cross = torch.cumsum(((R @ V) * Z).sum(0), 0)
        quad = torch.cumsum((Z**2).sum(0), 0)
        sse[: V.shape[1]] += float((R**2).sum()) - 2.0 * cross + quad
    return sse / (n * Yc.shape[1])


class SVDMap(LinearMap):
    """Reduced-rank ridge regression (the paper's SVD alignment); see the module docstring.

    Args:
        rank: a fixed ``k``; ``None`` (default) picks it by ``cv``-fold cross-validation on the
            anchors over every ``k`` from 1 to ``min(ds, dt, n - 1)``.
        alphas, cv, seed: the ridge penalty grid, chosen first by `RidgeMap`'s cross-validation
            (relative penalties), then held fixed while the rank is chosen; ``cv`` also sets the
            rank folds (``None`` means 5 folds for the rank).

    Learned: ``W_`` (rank ``rank_``), ``alpha_``, ``rank_cv_errors_`` (per rank, when chosen).
    """

    name = "svd"

    def __init__(self, rank: int | None = None, alphas: Sequence[float] = DEFAULT_ALPHAS,
                 cv: int | None = 5, seed: int = 0) -> None:
        self.rank = rank
        self.alphas = tuple(float(a) for a in alphas)
        self.cv = cv
        self.seed = seed

    def params_(self) -> dict[str, Any]:
        return {"rank": self.rank, "alphas": list(self.alphas), "cv": self.cv, "seed": self.seed}

    def _fit_centered(self, Xc: torch.Tensor, Yc: torch.Tensor, mu_x: torch.Tensor,
                      mu_y: torch.Tensor) -> None:
        n, ds = Xc.shape
        limit = min(ds, Yc.shape[1], n - 1)
        if self.rank is not None and not 1 <= int(self.rank) <= limit:
            raise AlignmentConfigError(f"svd rank {self.rank} is out of range: must be in "
                                       f"1..min(ds={ds}, dt={Yc.shape[1]}, n-1={n - 1})")
        ridge = RidgeMap(alphas=self.alphas, cv=self.cv, seed=self.seed).fit(Xc, Yc)
        self.alpha_ = float(ridge.alpha_)
        W = ridge.W_.to(torch.float64)
        if self.rank is None:
            if n < 4:
                raise AlignmentConfigError(f"svd needs at least 4 anchors to choose its rank "
                                           f"by cross-validation, got {n}; pass rank=")
            errors = rank_cv_errors(Xc, Yc, self.alpha_, int(self.cv or 5), self.seed)
            k = min(int(torch.argmin(errors)) + 1, limit)
            self.rank_cv_errors_ = errors.to(torch.float32)
        else:
            k = int(self.rank)
        V = _right_vectors(Xc, W)[:, :k]
        self.W_ = (W @ V @ V.T).to(torch.float32)
        self.rank_ = k

    def state_dict_(self) -> dict[str, torch.Tensor]:
        out = super().state_dict_()
        if hasattr(self, "rank_"):
            out["rank"] = torch.tensor(self.rank_, dtype=torch.float32)
        return out

    def _load_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        super()._load_state(tensors)
        if "rank" in tensors:
            self.rank_ = int(tensors["rank"])

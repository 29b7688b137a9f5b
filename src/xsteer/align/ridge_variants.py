"""Linear transport maps beyond plain ridge: whitened, direction-aware and relative.

All three learn one matrix ``W_`` ``(ds, dt)`` on benign-centred features, like
`xsteer.align.LinearMap`, so ``transport(v) = v @ W_`` and they save, load and plug into
``Alignment.fit(..., method=<instance>)`` exactly like ridge.

* `WhitenRidgeMap` whitens the source (shrunk covariance) before ridge, so the few
  dominant components of LM states (Gemma's top PC holds ~25% of the variance) do not decide
  the penalty alone.
* `DirectionAwareMap` knows the SOURCE direction it will carry (source-side data may be unsafe,
  the target side still only sees benign anchors) and either weights anchors by their
  projection on it or fits only on the source principal subspace the direction loads on.
* `RelativeMap` reads source states as similarities to benign anchors (relative
  representations) and maps those anchor coordinates to the target.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(300, 6, generator=g); W = torch.randn(6, 4, generator=g)
>>> m = WhitenRidgeMap(alphas=[1e-8], shrinkage=0.1).fit(X, X @ W)
>>> bool(torch.allclose(m.transport(torch.ones(6)), torch.ones(6) @ W, atol=1e-3))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from xsteer.align._linalg import ridge_cv, shrunk_inverse_sqrt, unit
from xsteer.align.base import AlignmentConfigError
from xsteer.align.linear import DEFAULT_ALPHAS, LinearMap

DA_MODES = ("weight", "subspace")
READOUTS = ("ridge", "relative")


class WhitenRidgeMap(LinearMap):
    """Ridge regression from whitened source states: ``W = C_s^{-1/2} W_white``.

    Args:
        shrinkage: weight ``a`` of the isotropic target in the shrunk covariance (0 < a <= 1;
            1 is plain ridge up to scale).
        alphas, cv, seed: the ridge penalty grid and its cross-validation (as `RidgeMap`).
    """

    name = "whiten-ridge"

    def __init__(self, shrinkage: float = 0.1, alphas: Sequence[float] = DEFAULT_ALPHAS,
                 cv: int | None = 5, seed: int = 0) -> None:
        self.shrinkage = shrinkage
        self.alphas = tuple(float(a) for a in alphas)
        self.cv = cv
        self.seed = seed

    def params_(self) -> dict[str, Any]:
        return {"shrinkage": self.shrinkage, "alphas": list(self.alphas), "cv": self.cv,
                "seed": self.seed}

    def _fit_centered(self, Xc: torch.Tensor, Yc: torch.Tensor, mu_x: torch.Tensor,
                      mu_y: torch.Tensor) -> None:
        S = shrunk_inverse_sqrt(Xc, float(self.shrinkage))
        Wz, alpha = ridge_cv(Xc @ S, Yc, self.alphas, self.cv, self.seed)
        self.W_ = (S @ Wz).to(torch.float32)
        self.alpha_ = alpha


class DirectionAwareMap(LinearMap):
    """Ridge that knows the source direction it must carry.

    Args:
        direction: the source direction (a list of ``ds`` floats; any norm; unsafe→safe). It comes
            from source-side pairs, which may be unsafe: the target side still sees benign data only.
        mode: ``"weight"``: anchor ``j`` gets weight ``1 + strength * z_j^2``, with ``z_j`` its
            standardised source projection on the direction, so the anchors that spread along the
            axis (near-miss topics) dominate the fit; ``"subspace"``: ridge on the ``rank``
            source principal components with the largest loadings ``|v_i . d|`` only, so capacity
            goes to where the direction lives.
        strength: the weighting strength (``weight`` mode).
        rank: the number of principal components kept (``subspace`` mode).
        alphas, cv, seed: ridge penalty grid and cross-validation (as `RidgeMap`).
    """

    name = "direction-aware"

    def __init__(self, direction: Sequence[float], mode: str = "weight", strength: float = 4.0,
                 rank: int = 64, alphas: Sequence[float] = DEFAULT_ALPHAS, cv: int | None = 5,
                 seed: int = 0) -> None:
        self.direction = [float(x) for x in direction]
        self.mode = mode
        self.strength = strength
        self.rank = rank
        self.alphas = tuple(float(a) for a in alphas)
        self.cv = cv
        self.seed = seed

    def params_(self) -> dict[str, Any]:
        return {"direction": list(self.direction), "mode": self.mode, "strength": self.strength,
                "rank": self.rank, "alphas": list(self.alphas), "cv": self.cv, "seed": self.seed}

    def _fit_centered(self, Xc: torch.Tensor, Yc: torch.Tensor, mu_x: torch.Tensor,
                      mu_y: torch.Tensor) -> None:
        if self.mode not in DA_MODES:
            raise AlignmentConfigError(f"direction-aware mode must be one of {DA_MODES}, "
                                       f"got {self.mode!r}")
        d = torch.tensor(self.direction, dtype=torch.float64)
        if d.numel() != Xc.shape[1]:
            raise AlignmentConfigError(f"direction-aware map: direction has {d.numel()} dims but "
                                       f"the source features have {Xc.shape[1]}")
        u = unit(d, "direction-aware map direction")
        if self.mode == "weight":
            z = Xc @ u
            z = z / z.std().clamp_min(1e-12)
            w = (1.0 + float(self.strength) * z**2).sqrt()[:, None]
            W, alpha = ridge_cv(Xc * w, Yc * w, self.alphas, self.cv, self.seed)
            self.W_ = W.to(torch.float32)
        else:
            _, _, Vt = torch.linalg.svd(Xc, full_matrices=False)
            k = int(self.rank)
            if not 1 <= k <= Vt.shape[0]:
                raise AlignmentConfigError(f"direction-aware rank {k} must be in 1..{Vt.shape[0]}")
            keep = torch.argsort((Vt @ u).abs(), descending=True)[:k]
            P = Vt[keep].T  # (ds, k): the components the direction loads on
            Wz, alpha = ridge_cv(Xc @ P, Yc, self.alphas, self.cv, self.seed)
            self.W_ = (P @ Wz).to(torch.float32)
            self.captured_ = float((P.T @ u).norm() ** 2)  # share of |d|^2 inside the subspace
        self.alpha_ = alpha


class RelativeMap(LinearMap):
    """Relative representations: source states as similarities to benign anchors.

    ``r(x) = A_s (x - mu_x)`` with ``A_s`` the unit-normalised centred source states of ``n_anchors``
    benign anchors (all fitting rows by default). The readout to the target is either a ridge fit
    ``r -> y`` (``"ridge"``) or the symmetric construction (``"relative"``): find the target vector
    whose similarities to the same anchors (``A_t``, normalised target states) match,
    ``y = (A_t^T A_t + lam I)^{-1} A_t^T r``, with one least-squares scale. Both are linear in
    ``x``, so a direction travels as ``v @ W``.

    Args:
        n_anchors: how many fitting rows serve as anchors (seeded choice), ``None`` for all.
        readout: ``"ridge"`` or ``"relative"``.
        ridge: relative penalty of the ``relative`` readout (times ``tr(A_t^T A_t) / dt``).
        alphas, cv, seed: ridge readout penalty grid and CV; ``seed`` also picks the anchors.
    """

    name = "relative"

    def __init__(self, n_anchors: int | None = None, readout: str = "ridge", ridge: float = 1e-2,
                 alphas: Sequence[float] = DEFAULT_ALPHAS, cv: int | None = 5,
                 seed: int = 0) -> None:
        self.n_anchors = n_anchors
        self.readout = readout
        self.ridge = ridge
        self.alphas = tuple(float(a) for a in alphas)
        self.cv = cv
        self.seed = seed

    def params_(self) -> dict[str, Any]:
        return {"n_anchors": self.n_anchors, "readout": self.readout, "ridge": self.ridge,
                "alphas": list(self.alphas), "cv": self.cv, "seed": self.seed}

    def _fit_centered(self, Xc: torch.Tensor, Yc: torch.Tensor, mu_x: torch.Tensor,
                      mu_y: torch.Tensor) -> None:
        if self.readout not in READOUTS:
            raise AlignmentConfigError(f"relative readout must be one of {READOUTS}, "
                                       f"got {self.readout!r}")
        n = Xc.shape[0]
        k = n if self.n_anchors is None else int(self.n_anchors)
        if not 1 <= k <= n:
            raise AlignmentConfigError(f"relative map: n_anchors {k} must be in 1..{n}")
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(int(self.seed)))[:k]
        A_s = torch.nn.functional.normalize(Xc[idx], dim=1)  # (k, ds)
        R = Xc @ A_s.T  # relative coordinates of every fitting row (n, k)
        if self.readout == "ridge":
            Wr, alpha = ridge_cv(R, Yc, self.alphas, self.cv, self.seed)
            self.alpha_ = alpha
            W = A_s.T @ Wr
        else:
            A_t = torch.nn.functional.normalize(Yc[idx], dim=1)  # (k, dt)
            G = A_t.T @ A_t
            lam = float(self.ridge) * float(torch.trace(G)) / G.shape[0]
            W = A_s.T @ A_t @ torch.linalg.inv(G + lam * torch.eye(G.shape[0], dtype=G.dtype))
            P = Xc @ W  # one global scale so transform() predicts target magnitudes
            denom = float((P**2).sum())
            W = W * (float((P * Yc).sum()) / denom if denom > 0 else 0.0)
        self.W_ = W.to(torch.float32)

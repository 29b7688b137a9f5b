"""Direction estimators from paired activations: pure functions on ``(n, dim)`` tensors.

Each takes the features of unsafe prompts ``U`` and of their paired safe prompts ``S`` (row i of
both comes from the same pair) and returns a vector pointing from unsafe to safe, scaled so its
length is the mean pair separation along it (so estimators are comparable in magnitude).

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> U = torch.randn(50, 8, generator=g); S = U + torch.tensor([1.0] + [0.0] * 7)
>>> mean_difference(U, S).round(decimals=4).tolist()[:2]
[1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from xsteer.errors import DimensionMismatchError, EmptyDataError, NonFiniteError


def check_pairs(unsafe: torch.Tensor, safe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate paired feature matrices: 2-D, same shape, non-empty, finite. Returns float32."""
    U = torch.as_tensor(unsafe).detach().to("cpu", torch.float32)
    S = torch.as_tensor(safe).detach().to("cpu", torch.float32)
    for name, t in (("unsafe features", U), ("safe features", S)):
        if t.ndim != 2:
            raise DimensionMismatchError(f"{name} rank", t.ndim, "pair features (n, dim)", 2)
        if t.shape[0] == 0:
            raise EmptyDataError(f"{name}: no pairs given (need at least one safe/unsafe pair)")
        if not torch.isfinite(t).all():
            raise NonFiniteError(f"{name} hold NaN or inf values")
    if U.shape[1] != S.shape[1]:
        raise DimensionMismatchError("safe features", S.shape[1], "unsafe features", U.shape[1])
    if U.shape[0] != S.shape[0]:
        raise DimensionMismatchError("safe pair count", S.shape[0], "unsafe pair count",
                                     U.shape[0], hint="pairs must be aligned row by row")
    return U, S


def _scale_to_separation(unit: torch.Tensor, U: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    sep = float(((S - U) @ unit).mean())
    if sep < 0:  # sign calibration: point from unsafe to safe
        unit, sep = -unit, -sep
    return unit * sep


def mean_difference(unsafe: torch.Tensor, safe: torch.Tensor) -> torch.Tensor:
    """``mean_i(safe_i - unsafe_i)``: the classic difference-of-means direction."""
    U, S = check_pairs(unsafe, safe)
    return (S - U).mean(dim=0)


def pca_difference(unsafe: torch.Tensor, safe: torch.Tensor) -> torch.Tensor:
    """First principal axis of the paired differences (uncentred), sign-calibrated to the pairs.

    Uncentred, so a consistent shift dominates it, as in repeng's ``pca_diff``; the sign is
    chosen so the mean pair difference projects positively.
    """
    U, S = check_pairs(unsafe, safe)
    D = (S - U).double()
    _, _, vh = torch.linalg.svd(D, full_matrices=False)
    unit = vh[0].float()
    return _scale_to_separation(unit, U, S)


def probe_direction(unsafe: torch.Tensor, safe: torch.Tensor, C: float = 1.0,
                    seed: int = 0) -> torch.Tensor:
    """Normal of an L2 logistic-regression probe separating safe from unsafe (standardised inputs).

    The weight is mapped back to the raw feature space (divided by the feature scale), normalised,
    and scaled to the mean pair separation along it.
    """
    from sklearn.linear_model import LogisticRegression

    U, S = check_pairs(unsafe, safe)
    X = torch.cat([U, S]).double().numpy()
    y = np.r_[np.zeros(len(U)), np.ones(len(S))]
    mu, sd = X.mean(0), X.std(0) + 1e-8
    clf = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    clf.fit((X - mu) / sd, y)
    w = torch.from_numpy(clf.coef_[0] / sd).float()
    return _scale_to_separation(w / w.norm(), U, S)


ESTIMATORS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mean-diff": mean_difference,
    "pca": pca_difference,
    "probe": probe_direction,
}


def get_estimator(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}") from None


def random_direction(dim: int, norm: float = 1.0, seed: int = 0) -> torch.Tensor:
    """A random direction of a given norm (the control every result is compared against)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(dim, generator=g)
    return v / v.norm() * norm

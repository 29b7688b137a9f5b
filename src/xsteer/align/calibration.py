"""Magnitude calibration from benign target statistics only.

A transported direction's raw length reflects the map (ridge shrinks, Procrustes rescales), not
how far a prompt should be pushed. Calibration replaces that length with one read off benign
target features, so steering strength ``alpha`` means "a fraction of the typical benign norm" and
native, transported and random directions can be compared at equal push.

>>> import torch
>>> Y = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 4.0], [0.0, -4.0], [0.0, 0.0]])
>>> stats = benign_stats(Y)
>>> float(stats["median_norm"])
3.0
>>> calibrate(torch.tensor([0.0, 10.0]), stats).tolist()
[0.0, 3.0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import torch

from xsteer.align.base import as_matrix
from xsteer.directions.direction import Direction
from xsteer.errors import ArtifactError, DimensionMismatchError, EmptyDataError, NonFiniteError

CalibrationMethod = Literal["benign-norm", "spread", "none"]
CALIBRATIONS: tuple[str, ...] = ("benign-norm", "spread", "none")
STAT_KEYS: tuple[str, ...] = ("mean", "median_norm", "std", "factor")


def benign_stats(Y_benign: Any) -> dict[str, torch.Tensor]:
    """Statistics of benign target features ``(n, dt)`` that calibration needs.

    Pass pooled features (one row per prompt, as the alignment is fitted) or, to calibrate
    against the per-token scale of a generator's conditioning, token states flattened to
    ``(n_tokens, dt)`` (padding removed).

    Returns float32 tensors: ``mean`` ``(dt,)``; ``median_norm`` (scalar, the median of
    ``||y - mean||``: the typical benign norm); ``std`` ``(dt,)`` per-dimension standard deviation;
    ``factor`` ``(dt, r)`` with ``factor @ factor.T`` the benign covariance (thin SVD of the centred
    rows, ``r = min(n, dt)``), so the spread along any unit ``u`` is ``||factor.T @ u||`` exactly
    without storing a ``dt x dt`` matrix.
    """
    Y = as_matrix(Y_benign, "benign target features")
    n = Y.shape[0]
    if n < 2:
        raise EmptyDataError(f"benign statistics need at least 2 prompts, got {n}")
    mu = Y.mean(0)
    Yc = Y - mu
    _, s, Vt = torch.linalg.svd(Yc, full_matrices=False)
    return {
        "mean": mu.float(),
        "median_norm": Yc.norm(dim=1).median().float(),
        "std": Yc.std(dim=0).float(),
        "factor": (Vt.T * (s / (n - 1) ** 0.5)).float(),
    }


def check_stats(stats: Mapping[str, torch.Tensor], dim: int | None = None) -> int:
    """Validate a `benign_stats` dict (keys, shapes); returns its dimension. Raises `ArtifactError`."""
    missing = [k for k in STAT_KEYS if k not in stats]
    if missing:
        raise ArtifactError(f"benign statistics lack {missing} (have {sorted(stats)})")
    d = int(stats["mean"].numel())
    shapes = {"mean": (d,), "median_norm": (), "std": (d,)}
    for k, shape in shapes.items():
        if tuple(stats[k].shape) != shape:
            raise ArtifactError(f"benign statistic '{k}' has shape {tuple(stats[k].shape)}, expected {shape}")
    if stats["factor"].ndim != 2 or stats["factor"].shape[0] != d:
        raise ArtifactError(f"benign statistic 'factor' has shape {tuple(stats['factor'].shape)}, "
                            f"expected ({d}, r)")
    if dim is not None and d != dim:
        raise DimensionMismatchError("benign statistics", d, "target space", dim)
    return d


def benign_spread(u: torch.Tensor, stats: Mapping[str, torch.Tensor]) -> float:
    """Standard deviation of benign projections onto the unit vector ``u``."""
    return float((stats["factor"].T @ u.to(stats["factor"].dtype)).norm())


def calibrate(v: Any, stats: Mapping[str, torch.Tensor],
              method: CalibrationMethod | str = "benign-norm") -> torch.Tensor:
    """Rescale direction ``v`` ``(dt,)`` by benign statistics; its orientation never changes.

    ``benign-norm``: ``unit(v) * median ||y - mean||``; ``spread``: ``unit(v) * std(benign
    projections on unit(v))``; ``none``: ``v`` unchanged.
    """
    if method not in CALIBRATIONS:
        raise ValueError(f"unknown calibration {method!r}; known: {', '.join(CALIBRATIONS)}")
    t = torch.as_tensor(v).detach().to("cpu", torch.float32)
    if t.ndim != 1:
        raise DimensionMismatchError("direction rank", t.ndim, "calibration (one vector)", 1)
    d = check_stats(stats)
    if t.numel() != d:
        raise DimensionMismatchError("direction", t.numel(), "benign statistics", d)
    if not torch.isfinite(t).all():
        raise NonFiniteError("direction holds NaN or inf values")
    if method == "none":
        return t.clone()
    norm = float(t.norm())
    if norm == 0.0:
        raise NonFiniteError("cannot calibrate a zero direction (its orientation is undefined)")
    u = t / norm
    scale = float(stats["median_norm"]) if method == "benign-norm" else benign_spread(u, stats)
    return u * scale


def calibrate_direction(direction: Direction, stats: Mapping[str, torch.Tensor],
                        method: CalibrationMethod | str = "benign-norm") -> Direction:
    """`calibrate` for a `Direction` (native, random or transported), recording it in ``meta``.

    Use the same ``stats`` (benign target features) for every direction being compared, so they
    are pushed equally hard.
    """
    vec = calibrate(direction.vector, stats, method)
    meta = {**direction.meta, "calibration": method, "norm_before_calibration": direction.norm}
    return dataclasses.replace(direction, vector=vec, meta=meta)

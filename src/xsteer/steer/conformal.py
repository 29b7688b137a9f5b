"""Conformal gate thresholds: a false-trigger rate at most ``q`` with probability at least ``1 - delta``.

A gate fires when a prompt's score is above a threshold. Setting that threshold at the plain
``1 - q`` quantile of benign calibration scores gives a false-trigger rate that is ``q`` only on
average over calibration draws: about half the time it is above ``q``. Here the threshold is an
order statistic chosen so that the guarantee holds with high probability over the draw.

The guarantee (a training-conditional, "PAC" conformal bound): let ``s_1, ..., s_n`` be benign
calibration scores and ``S`` a new benign score, all i.i.d. (exchangeable draws from one
distribution). With ``tau = s_(k)``, the ``k``-th smallest, and ``k`` the smallest rank such that
``P[Binomial(n, 1 - q) >= k] <= delta``,

    P_calibration( P_S[S > tau] > q ) <= delta.

Why: for continuous scores ``F(s_(k))`` is the ``k``-th order statistic of ``n`` uniforms, so
``P[F(s_(k)) < 1 - q] = P[Binomial(n, 1 - q) >= k]``; ties only make ``P[S > tau]`` smaller, so the
bound holds for any distribution. It says nothing about prompts unlike the calibration set: the
guarantee is only as good as the benign set is representative of the benign traffic.

It needs ``n >= log(delta) / log(1 - q)`` scores (even the maximum may be too low otherwise):
459 for q = 1 %, delta = 1 %; 299 for q = 1 %, delta = 5 %.

>>> import torch
>>> scores = torch.randn(2000, generator=torch.Generator().manual_seed(0))
>>> tau = conformal_threshold(scores, q=0.01, delta=0.05)
>>> bool(tau > torch.quantile(scores, 0.99))  # a little above the plain quantile
True
>>> min_calibration_size(0.01, 0.05)
299
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import binom

from xsteer.errors import EmptyDataError, NonFiniteError


def _check(q: float, delta: float) -> None:
    if not 0.0 < q < 1.0:
        raise ValueError(f"false-trigger rate q must be in (0, 1), got {q}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"failure probability delta must be in (0, 1), got {delta}")


def min_calibration_size(q: float, delta: float) -> int:
    """The fewest benign scores for which any threshold carries the (q, delta) guarantee."""
    _check(q, delta)
    return max(1, math.ceil(math.log(delta) / math.log1p(-q)))


def conformal_rank(n: int, q: float, delta: float) -> int:
    """The 1-based rank ``k`` of the order statistic to use as threshold among ``n`` scores.

    The smallest ``k`` with ``P[Binomial(n, 1 - q) >= k] <= delta`` (smallest: the lowest
    threshold, hence the most recall, that keeps the guarantee).
    """
    _check(q, delta)
    need = min_calibration_size(q, delta)
    if n < need:
        raise EmptyDataError(f"a conformal threshold at q={q}, delta={delta} needs at least {need} "
                             f"benign calibration scores, got {n}")
    ks = np.arange(1, n + 1)
    ok = binom.sf(ks - 1, n, 1.0 - q) <= delta  # sf(k - 1) = P[X >= k]; decreasing in k
    return int(ks[np.argmax(ok)])


def conformal_threshold(scores: torch.Tensor | np.ndarray, q: float = 0.01,
                        delta: float = 0.05) -> float:
    """Threshold on benign ``scores`` ``(n,)``: firing on ``score > threshold`` triggers on at most a
    ``q`` share of new benign prompts, with probability at least ``1 - delta`` over the draw of the
    calibration set (see the module docstring for the exact statement and its assumptions).

    Raises `EmptyDataError` naming the minimum ``n`` when there are too few scores.
    """
    s = np.asarray(torch.as_tensor(scores).detach().double().flatten().cpu())
    if not np.isfinite(s).all():
        raise NonFiniteError("calibration scores hold NaN or inf")
    k = conformal_rank(int(s.size), q, delta)
    return float(np.sort(s)[k - 1])

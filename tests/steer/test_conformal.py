"""Conformal thresholds: the realised false-trigger rate on a planted benign distribution exceeds q in
at most about delta of calibration draws, and too-small calibration sets are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binom, norm

from xsteer.errors import EmptyDataError, NonFiniteError
from xsteer.steer.conformal import conformal_rank, conformal_threshold, min_calibration_size

SEEDS = 4000


def _exceed_share(n: int, q: float, delta: float, rank: int | None = None) -> float:
    """Share of seeded calibration draws (standard normal benign scores) whose threshold lets more
    than ``q`` of new benign scores through; the true rate is exact: 1 - Phi(threshold)."""
    rng = np.random.default_rng(0)
    draws = np.sort(rng.standard_normal((SEEDS, n)), axis=1)
    k = conformal_rank(n, q, delta) if rank is None else rank
    realised = norm.sf(draws[:, k - 1])
    return float(np.mean(realised > q))


@pytest.mark.parametrize(("n", "q", "delta"), [(500, 0.05, 0.1), (1000, 0.01, 0.05),
                                               (300, 0.02, 0.2)])
def test_false_trigger_rate_exceeds_q_in_at_most_delta_of_seeds(n: int, q: float,
                                                                delta: float) -> None:
    share = _exceed_share(n, q, delta)
    # The count of failing seeds is Binomial(SEEDS, p <= delta): allow its 99.9% quantile.
    assert share * SEEDS <= binom.ppf(0.999, SEEDS, delta), share
    # ... and the rank is the smallest that keeps the bound, so it is not needlessly strict:
    assert share >= 0.3 * delta, share


def test_the_plain_quantile_breaks_the_bound_so_the_check_has_teeth() -> None:
    n, q, delta = 1000, 0.01, 0.05
    plain = int(np.ceil(n * (1 - q)))  # the 99% empirical quantile, as `Gate.calibrate` uses
    assert plain < conformal_rank(n, q, delta)
    assert _exceed_share(n, q, delta, rank=plain) > 3 * delta


def test_bound_holds_with_ties() -> None:
    # Discrete scores (many ties): P[S > tau] is exact from the planted pmf.
    n, q, delta, vals = 400, 0.05, 0.1, 40
    p = np.linspace(1.0, 0.02, vals)
    p /= p.sum()
    tail = np.concatenate([np.cumsum(p[::-1])[::-1][1:], [0.0]])  # P[S > v] for v = 0..vals-1
    rng = np.random.default_rng(1)
    fails = 0
    for _ in range(1000):
        tau = conformal_threshold(rng.choice(vals, size=n, p=p).astype(float), q, delta)
        fails += tail[int(tau)] > q
    assert fails <= binom.ppf(0.999, 1000, delta)


def test_rank_is_the_smallest_that_keeps_the_guarantee() -> None:
    for n, q, delta in [(500, 0.05, 0.1), (2000, 0.01, 0.05)]:
        k = conformal_rank(n, q, delta)
        assert binom.sf(k - 1, n, 1 - q) <= delta < binom.sf(k - 2, n, 1 - q)


def test_threshold_is_that_order_statistic_and_accepts_tensors() -> None:
    s = torch.randn(800, generator=torch.Generator().manual_seed(3))
    k = conformal_rank(800, 0.02, 0.05)
    assert conformal_threshold(s, 0.02, 0.05) == pytest.approx(float(s.sort().values[k - 1]))


def test_too_small_calibration_set_names_the_minimum() -> None:
    assert min_calibration_size(0.01, 0.05) == 299
    assert min_calibration_size(0.01, 0.01) == 459
    with pytest.raises(EmptyDataError, match="needs at least 299 benign calibration scores, got 298"):
        conformal_threshold(np.zeros(298), q=0.01, delta=0.05)
    assert conformal_rank(299, 0.01, 0.05) == 299  # exactly enough: the maximum


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="q must be in"):
        conformal_threshold(np.zeros(1000), q=0.0)
    with pytest.raises(ValueError, match="delta must be in"):
        conformal_threshold(np.zeros(1000), delta=1.5)
    with pytest.raises(NonFiniteError):
        conformal_threshold(np.array([0.0] * 999 + [np.nan]))

"""Planted-answer tests for the SVD map (reduced-rank ridge regression, the paper's "SVD")."""

from __future__ import annotations

import pytest
import torch

from xsteer.align import RidgeMap, SVDMap, make_map
from xsteer.align.base import AlignmentConfigError
from xsteer.align.svd import rank_cv_errors


def planted_low_rank(n=400, ds=12, dt=9, rank=3, noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, ds, generator=g) * torch.linspace(0.5, 2.0, ds) + 3.0
    W = torch.randn(ds, rank, generator=g) @ torch.randn(rank, dt, generator=g)
    Y = (X - X.mean(0)) @ W + 5.0 + noise * torch.randn(n, dt, generator=g)
    return X, Y, W


@pytest.mark.parametrize("rank", [1, 3, 5])
def test_cv_recovers_the_planted_rank_and_map(rank):
    X, Y, W = planted_low_rank(rank=rank)
    m = SVDMap().fit(X, Y)
    assert m.rank_ == rank
    assert int(torch.linalg.matrix_rank(m.W_.double(), rtol=1e-5)) == rank
    assert torch.linalg.norm(m.W_ - W) / torch.linalg.norm(W) < 0.05


def test_reduced_rank_beats_full_ridge_on_held_out_rows_when_the_truth_is_low_rank():
    Xa, Ya, _ = planted_low_rank(n=520, ds=30, dt=20, rank=2, noise=1.0)
    X, Y, Xv, Yv = Xa[:120], Ya[:120], Xa[120:], Ya[120:]
    svd, ridge = SVDMap().fit(X, Y), RidgeMap().fit(X, Y)
    assert svd.rank_ == 2
    assert svd.score(Xv, Yv)["r2"] > ridge.score(Xv, Yv)["r2"]


def test_full_rank_with_the_same_penalty_is_ridge():
    X, Y, _ = planted_low_rank(rank=4, noise=1.0)
    m = SVDMap(rank=9, alphas=[0.1]).fit(X, Y)
    assert torch.allclose(m.W_, RidgeMap(alphas=[0.1]).fit(X, Y).W_, atol=1e-4)


def test_fixed_rank_is_the_best_rank_k_least_squares_map():
    # With lam -> 0, W_k minimises ||Y - X W||_F over rank-k W (Izenman 1975): no other rank-k map
    # fits better, e.g. not the truncated SVD of W_ols itself.
    X, Y, _ = planted_low_rank(rank=6, noise=2.0)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    m = SVDMap(rank=2, alphas=[1e-12]).fit(X, Y)
    W_ols = RidgeMap(alphas=[1e-12]).fit(X, Y).W_
    U, s, Vt = torch.linalg.svd(W_ols)
    naive = U[:, :2] @ torch.diag(s[:2]) @ Vt[:2]
    assert ((Yc - Xc @ m.W_) ** 2).sum() < ((Yc - Xc @ naive) ** 2).sum()


def test_rank_cv_errors_match_a_brute_force_refit():
    X, Y, _ = planted_low_rank(n=60, ds=6, dt=5, rank=2, noise=0.5)
    Xc, Yc = (X - X.mean(0)).double(), (Y - Y.mean(0)).double()
    fast = rank_cv_errors(Xc, Yc, 0.01, 3, 0)
    n = Xc.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    fold = torch.empty(n, dtype=torch.long)
    fold[perm] = torch.arange(n) % 3
    for k in (1, 2, 4):
        sse = 0.0
        for f in range(3):
            tr, va = fold != f, fold == f
            mx, my = Xc[tr].mean(0), Yc[tr].mean(0)
            m = SVDMap(rank=k, alphas=[0.01]).fit(Xc[tr], Yc[tr])
            pred = (Xc[va] - mx) @ m.W_.double() + my
            sse += float(((Yc[va] - pred) ** 2).sum())
        assert fast[k - 1] == pytest.approx(sse / (n * 5), rel=1e-4)


def test_registry_name_and_bad_rank():
    assert isinstance(make_map("svd"), SVDMap)
    X, Y, _ = planted_low_rank(n=20)
    with pytest.raises(AlignmentConfigError, match="svd rank 50 is out of range"):
        SVDMap(rank=50).fit(X, Y)

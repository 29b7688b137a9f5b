"""Planted-answer tests for the alignment maps; the shared invariants run over every map in MAPS."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xsteer.align import (
    MAPS,
    AlignmentConfigError,
    CCAMap,
    LinearMap,
    MLPMap,
    NotFittedError,
    ProcrustesMap,
    RidgeMap,
    UnknownMapError,
    make_map,
)
from xsteer.align.linear import orthogonal_procrustes
from xsteer.errors import ArtifactError, DimensionMismatchError, EmptyDataError, NonFiniteError


def planted_linear(n=200, ds=10, dt=6, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, ds, generator=g) * torch.linspace(0.5, 3.0, ds) + 5.0
    W = torch.randn(ds, dt, generator=g)
    Y = (X - X.mean(0)) @ W + torch.randn(dt, generator=g) * 10 + noise * torch.randn(n, dt, generator=g)
    return X, Y, W


def orthogonal(d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0].float()


def fast(name, ds=10):
    """Parameters each registered map needs for these tests (a small MLP; a source direction)."""
    return {"mlp": {"hidden": 16, "epochs": 20},
            "direction-aware": {"direction": [1.0] * ds}}.get(name, {})


# -- ridge ------------------------------------------------------------------------------------
def test_ridge_tiny_alpha_equals_least_squares():
    X, Y, _ = planted_linear(noise=0.5)
    m = RidgeMap(alphas=[1e-12]).fit(X, Y)
    Xc, Yc = (X - X.mean(0)).double(), (Y - Y.mean(0)).double()
    W_ls = torch.linalg.lstsq(Xc, Yc).solution.float()
    assert torch.allclose(m.W_, W_ls, atol=1e-4)
    assert m.alpha_ == 1e-12


@pytest.mark.parametrize("cv", [5, None])
def test_ridge_cv_picks_small_penalty_for_signal_and_large_for_noise(cv):
    X, Y, _ = planted_linear(n=60, noise=0.01)
    alphas = [1e-4, 1e-2, 1.0, 1e2, 1e4]
    assert RidgeMap(alphas=alphas, cv=cv).fit(X, Y).alpha_ <= 1e-2
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(60, 6, generator=g)
    assert RidgeMap(alphas=alphas, cv=cv).fit(X, noise).alpha_ >= 1e2


def test_ridge_closed_form_loo_matches_brute_force():
    X, Y, _ = planted_linear(n=15, ds=6, dt=3, noise=1.0)
    X, Y = X.double(), Y.double()
    m = RidgeMap(alphas=[0.1, 3.0], cv=None, relative=False)
    fast_err = m._loo_errors(X - X.mean(0), Y - Y.mean(0), torch.tensor([0.1, 3.0], dtype=torch.float64))
    for j, alpha in enumerate([0.1, 3.0]):
        sq = []
        for i in range(len(X)):
            keep = torch.arange(len(X)) != i
            r = RidgeMap(alphas=[alpha], relative=False).fit(X[keep], Y[keep])
            sq.append(((r.transform(X[i:i + 1].float()).double() - Y[i]) ** 2).mean())
        assert float(fast_err[j]) == pytest.approx(float(torch.stack(sq).mean()), rel=1e-3)


def test_ridge_kfold_errors_match_refitting_each_fold():
    X, Y, _ = planted_linear(n=30, ds=6, dt=3, noise=1.0)
    X, Y = X.double(), Y.double()
    alphas = [0.01, 1.0, 100.0]
    m = RidgeMap(alphas=alphas, cv=3, seed=4)
    fast_err = m._kfold_errors(X, Y, torch.tensor(alphas, dtype=torch.float64))
    folds = torch.arange(30)[torch.randperm(30, generator=torch.Generator().manual_seed(4))] % 3
    for j, alpha in enumerate(alphas):
        sse = 0.0
        for f in range(3):
            tr, va = folds != f, folds == f
            r = RidgeMap(alphas=[alpha]).fit(X[tr], Y[tr])
            sse += float(((r.transform(X[va].float()).double() - Y[va]) ** 2).sum())
        assert float(fast_err[j]) == pytest.approx(sse / Y.numel(), rel=1e-4)


def test_ridge_relative_alpha_is_scale_free():
    X, Y, _ = planted_linear(noise=1.0)
    a = RidgeMap(alphas=[1.0]).fit(X, Y)
    b = RidgeMap(alphas=[1.0]).fit(X * 1000, Y)
    assert torch.allclose(a.W_, b.W_ * 1000, rtol=1e-3, atol=1e-5)


# -- Procrustes -------------------------------------------------------------------------------
@pytest.mark.parametrize("whiten", [False, True])
@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_procrustes_recovers_planted_orthogonal_map(whiten, scale):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(300, 12, generator=g) * torch.linspace(1, 4, 12) + 2.0
    Q = orthogonal(12)
    m = ProcrustesMap(whiten=whiten).fit(X, scale * X @ Q)
    assert (m.W_ - scale * Q).abs().max() < 1e-4
    assert m.rank_ == 12


def test_orthogonal_procrustes_matches_scipy():
    from scipy.linalg import orthogonal_procrustes as scipy_op

    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(40, 7, generator=g, dtype=torch.float64), torch.randn(40, 7, generator=g, dtype=torch.float64)
    R, total = orthogonal_procrustes(A, B)
    R_ref, total_ref = scipy_op(A.numpy(), B.numpy())
    assert torch.allclose(R, torch.from_numpy(R_ref), atol=1e-10)
    assert total == pytest.approx(float(total_ref), rel=1e-10)


def test_procrustes_rank_is_checked():
    X, Y, _ = planted_linear(n=5)
    with pytest.raises(AlignmentConfigError, match="rank 7"):
        ProcrustesMap(rank=7).fit(X, Y)
    assert ProcrustesMap().fit(X, Y).rank_ == 4  # n - 1 axes at most


# -- CCA ---------------------------------------------------------------------------------------
def test_cca_recovers_planted_map_on_low_rank_data():
    g = torch.Generator().manual_seed(0)
    L = torch.randn(500, 5, generator=g)
    X = L @ torch.randn(5, 30, generator=g) * 50 + 100  # large, uneven, low rank (like LM states)
    Y = X @ torch.randn(30, 8, generator=g) / 50
    m = CCAMap().fit(X[:400], Y[:400])
    s = m.score(X[400:], Y[400:])
    assert s["r2"] > 0.99
    assert m.n_components_ == 8
    assert float(m.correlations_[:5].min()) > 0.99


# -- MLP ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["difference", "jvp"])
def test_mlp_transport_follows_planted_linear_map(mode):
    X, Y, W = planted_linear(n=200, noise=0.05)
    m = MLPMap(hidden=16, epochs=10, transport_mode=mode).fit(X, Y)
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        v = torch.randn(10, generator=g)
        cos = torch.nn.functional.cosine_similarity(m.transport(v), v @ W, dim=0)
        assert cos > 0.95


def test_mlp_learns_nonlinearity_ridge_cannot():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(600, 4, generator=g)
    Y = torch.stack([X[:, 0] ** 2, torch.tanh(3 * X[:, 1]) + X[:, 2]], dim=1)
    mlp = MLPMap(hidden=32, epochs=100, lr=2e-2, batch_size=400).fit(X[:400], Y[:400])
    ridge = RidgeMap().fit(X[:400], Y[:400])
    assert mlp.score(X[400:], Y[400:])["r2"] > ridge.score(X[400:], Y[400:])["r2"] + 0.2


def test_mlp_is_deterministic_and_leaves_global_rng_alone():
    X, Y, _ = planted_linear(n=100)
    before = torch.random.get_rng_state()
    a = MLPMap(hidden=8, epochs=5, seed=1).fit(X, Y)
    assert torch.equal(before, torch.random.get_rng_state())
    b = MLPMap(hidden=8, epochs=5, seed=1).fit(X, Y)
    c = MLPMap(hidden=8, epochs=5, seed=2).fit(X, Y)
    assert torch.equal(a.transform(X), b.transform(X))
    assert not torch.equal(a.transform(X), c.transform(X))


# -- shared behaviour ----------------------------------------------------------------------------
LINEAR = [name for name, cls in MAPS.items() if issubclass(cls, LinearMap)]


def test_every_map_but_mlp_and_knn_is_linear():
    assert set(MAPS) - set(LINEAR) == {"mlp", "anchor-knn"}


@pytest.mark.parametrize("name", LINEAR)
def test_linear_transport_is_W_v(name):
    X, Y, _ = planted_linear(noise=0.3)
    m = make_map(name, **fast(name)).fit(X, Y)
    v = torch.randn(10, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(m.transport(v), v @ m.W_)
    mid = m.mu_x_
    assert torch.allclose(m.transport(v), m.transform(mid + v) - m.transform(mid), atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(a=st.floats(-5, 5), b=st.floats(-5, 5), seed=st.integers(0, 1000))
def test_linear_transport_is_linear(a, b, seed):
    X, Y, _ = planted_linear(n=50, ds=6, dt=4, noise=0.2, seed=seed % 7)
    m = RidgeMap(alphas=[0.1]).fit(X, Y)
    g = torch.Generator().manual_seed(seed)
    v, w = torch.randn(6, generator=g), torch.randn(6, generator=g)
    assert torch.allclose(m.transport(a * v + b * w), a * m.transport(v) + b * m.transport(w), atol=1e-4)


def _fit_planted(name):
    X, Y, _ = planted_linear(n=300)
    if name == "procrustes":  # it can only fit a scaled rotation: plant one
        Y = 2.0 * X @ orthogonal(10) + 1.0
    return make_map(name, **fast(name)).fit(X[:200], Y[:200]), X[200:], Y[200:]


KNN_IS_NOT_LINEAR = pytest.mark.xfail(
    strict=True, reason="anchor-knn predicts a point as the mean of its k=10 nearest benign "
    "anchors: a local average, not a linear fit, so 200 anchors in 10 dims give held-out R2 ~0.75 "
    "on a planted linear map. It is meant to carry directions by anchor contrast, not to "
    "interpolate points.")


@pytest.mark.parametrize("name", [pytest.param(n, marks=KNN_IS_NOT_LINEAR) if n == "anchor-knn"
                                  else n for n in MAPS])
def test_score_is_perfect_on_noiseless(name):
    m, X, Y = _fit_planted(name)
    s = m.score(X, Y)
    assert s["r2"] > 0.99 and s["top1"] == 1.0 and s["n"] == 100


@pytest.mark.parametrize("name", list(MAPS))
def test_score_is_null_on_shuffled(name):
    m, X, Y = _fit_planted(name)
    shuffled = Y[torch.randperm(100, generator=torch.Generator().manual_seed(0))]
    s0 = m.score(X, shuffled)
    assert s0["r2"] < 0.05 and s0["top1"] < 0.1


@pytest.mark.parametrize("name", list(MAPS))
def test_state_round_trip_gives_equal_transforms(name):
    X, Y, _ = planted_linear(n=80, noise=0.5)
    m = make_map(name, **fast(name)).fit(X, Y)
    state = {k: v.clone() for k, v in m.state_dict_().items()}
    back = type(m).from_state(m.params_(), state)
    assert torch.equal(back.transform(X), m.transform(X))
    assert torch.equal(back.transport(X[0]), m.transport(X[0]))
    broken = dict(state)
    broken["mu_x"] = torch.zeros(3)
    with pytest.raises(ArtifactError, match="shape"):
        type(m).from_state(m.params_(), broken)
    del broken["mu_y"]
    with pytest.raises(ArtifactError, match="mu_y"):
        type(m).from_state(m.params_(), broken)


def test_inputs_are_validated_with_named_errors():
    X, Y, _ = planted_linear(n=20)
    with pytest.raises(DimensionMismatchError, match="rank"):
        RidgeMap().fit(X[0], Y)
    with pytest.raises(DimensionMismatchError, match="row count"):
        RidgeMap().fit(X, Y[:10])
    with pytest.raises(EmptyDataError):
        RidgeMap().fit(X[:1], Y[:1])
    with pytest.raises(EmptyDataError):
        RidgeMap().fit(torch.zeros(0, 10), torch.zeros(0, 6))
    bad = X.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(NonFiniteError):
        RidgeMap().fit(bad, Y)
    with pytest.raises(NotFittedError):
        RidgeMap().transform(X)
    m = RidgeMap().fit(X, Y)
    with pytest.raises(DimensionMismatchError, match="has dim 9 but alignment input expects 10"):
        m.transport(torch.ones(9))
    with pytest.raises(DimensionMismatchError):
        m.transform(torch.ones(4, 9))
    assert m.transform(X[0]).shape == (6,)


def test_registry():
    assert set(MAPS) == {"ridge", "procrustes", "cca", "mlp", "whiten-ridge", "direction-aware",
                         "relative", "anchor-knn", "svd"}
    assert all(cls.name == name for name, cls in MAPS.items())
    with pytest.raises(UnknownMapError, match="known: ridge, procrustes, cca, mlp, whiten-ridge, "
                                              "direction-aware, relative, anchor-knn, svd"):
        make_map("pca")
    with pytest.raises(AlignmentConfigError, match="procrustes"):
        make_map("procrustes", alpha=1.0)
    m = make_map("cca", n_components=3)
    assert isinstance(m, CCAMap) and m.params_() == {"n_components": 3, "reg": 1e-3}
    assert repr(m) == "CCAMap(n_components=3, reg=0.001)"


@pytest.mark.parametrize("name", list(MAPS))
def test_fewer_rows_than_dims_still_gives_finite_maps(name):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 40, generator=g) * 1000.0  # n < ds, Gemma-sized norms
    Y = torch.randn(30, 20, generator=g)
    m = make_map(name, **fast(name, ds=40)).fit(X, Y)
    assert torch.isfinite(m.transform(X)).all()
    assert torch.isfinite(m.transport(X[0] - X[1])).all()
    assert m.transport(X[0] - X[1]).shape == (20,)

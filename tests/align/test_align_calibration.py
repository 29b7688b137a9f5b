"""Magnitude calibration from benign statistics: planted norms and spreads."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xsteer.align import benign_spread, benign_stats, calibrate, calibrate_direction
from xsteer.directions import Direction, random_direction
from xsteer.errors import ArtifactError, DimensionMismatchError, EmptyDataError, NonFiniteError


def anisotropic(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g) * torch.tensor([5.0, 1.0, 0.1]) + torch.tensor([100.0, -3.0, 7.0])


def test_benign_stats_planted():
    Y = anisotropic()
    s = benign_stats(Y)
    Yc = Y - Y.mean(0)
    assert torch.allclose(s["mean"], Y.mean(0))
    assert float(s["median_norm"]) == pytest.approx(float(Yc.norm(dim=1).median()), rel=1e-6)
    assert torch.allclose(s["std"], torch.tensor([5.0, 1.0, 0.1]), rtol=0.05)
    cov = Yc.T.double() @ Yc.double() / (len(Y) - 1)
    assert torch.allclose((s["factor"] @ s["factor"].T).double(), cov, rtol=1e-4, atol=1e-4)


def test_benign_norm_calibration_sets_length_to_typical_benign_norm():
    Y = anisotropic()
    s = benign_stats(Y)
    v = torch.tensor([3.0, 4.0, 0.0])
    out = calibrate(v, s)
    assert float(out.norm()) == pytest.approx(float(s["median_norm"]), rel=1e-6)
    assert torch.allclose(out / out.norm(), v / v.norm())


@pytest.mark.parametrize("axis,expected", [(0, 5.0), (1, 1.0), (2, 0.1)])
def test_spread_calibration_uses_benign_spread_along_the_direction(axis, expected):
    Y = anisotropic()
    s = benign_stats(Y)
    u = torch.zeros(3)
    u[axis] = -7.0
    out = calibrate(u, s, "spread")
    exact = float(((Y - Y.mean(0)) @ (u / u.norm())).std())
    assert float(out.norm()) == pytest.approx(exact, rel=1e-4)
    assert float(out.norm()) == pytest.approx(expected, rel=0.05)
    assert float(out[axis]) < 0  # orientation kept
    assert benign_spread(u / u.norm(), s) == pytest.approx(exact, rel=1e-4)


def test_none_returns_vector_and_errors_are_named():
    s = benign_stats(anisotropic(50))
    v = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(calibrate(v, s, "none"), v)
    with pytest.raises(NonFiniteError, match="zero"):
        calibrate(torch.zeros(3), s)
    with pytest.raises(DimensionMismatchError, match="has dim 4 but benign statistics expects 3"):
        calibrate(torch.ones(4), s)
    with pytest.raises(ValueError, match="unknown calibration"):
        calibrate(v, s, "l2")
    with pytest.raises(ArtifactError, match="factor"):
        calibrate(v, {k: t for k, t in s.items() if k != "factor"})
    with pytest.raises(EmptyDataError):
        benign_stats(torch.ones(1, 3))


@settings(max_examples=30, deadline=None)
@given(c=st.floats(1e-3, 1e3), method=st.sampled_from(["benign-norm", "spread"]))
def test_calibration_ignores_input_length(c, method):
    s = benign_stats(anisotropic(200))
    v = torch.tensor([0.3, -1.0, 2.0])
    assert torch.allclose(calibrate(c * v, s, method), calibrate(v, s, method), rtol=1e-4)


def test_native_and_random_directions_get_equal_push():
    s = benign_stats(anisotropic(300))
    native = Direction(torch.tensor([10.0, 0.0, 1.0]), model_id="t", site="p", origin="native")
    rand = Direction(random_direction(3, norm=0.01, seed=1), model_id="t", site="p", origin="random")
    a, b = calibrate_direction(native, s), calibrate_direction(rand, s)
    assert a.norm == pytest.approx(b.norm, rel=1e-6)
    assert a.meta["calibration"] == "benign-norm"
    assert a.meta["norm_before_calibration"] == pytest.approx(native.norm)
    assert a.origin == "native" and native.norm == pytest.approx(float(torch.tensor([10.0, 1.0]).norm()))

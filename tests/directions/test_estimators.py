import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xsteer.directions import mean_difference, pca_difference, probe_direction, random_direction
from xsteer.errors import DimensionMismatchError, EmptyDataError, NonFiniteError


def planted(n=200, dim=32, seed=0, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    true = torch.randn(dim, generator=g)
    true = true / true.norm() * 3.0
    U = torch.randn(n, dim, generator=g) * 2.0
    S = U + true + noise * torch.randn(n, dim, generator=g)
    return U, S, true


@pytest.mark.parametrize("est", [mean_difference, pca_difference, probe_direction])
def test_estimators_recover_planted_direction(est):
    # the probe is discriminative and unpaired, so it needs more samples to pin the axis down
    U, S, true = planted(n=2000 if est is probe_direction else 200)
    d = est(U, S)
    cos = torch.nn.functional.cosine_similarity(d, true, dim=0)
    assert cos > 0.99
    # points unsafe -> safe and has the pair separation's magnitude
    assert float((S - U).mean(0) @ d) > 0
    assert abs(d.norm() - true.norm()) / true.norm() < 0.1


def test_pca_sign_is_calibrated_even_when_svd_flips():
    U, S, true = planted(seed=3)
    # swapping roles must flip the direction
    assert torch.nn.functional.cosine_similarity(pca_difference(S, U), -true, dim=0) > 0.99


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 16), st.integers(0, 10_000))
def test_mean_difference_is_linear_in_shift(n, dim, seed):
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(n, dim, generator=g)
    shift = torch.randn(dim, generator=g)
    assert torch.allclose(mean_difference(U, U + shift), shift, atol=1e-5)


def test_bad_input():
    with pytest.raises(EmptyDataError, match="no pairs"):
        mean_difference(torch.zeros(0, 3), torch.zeros(0, 3))
    with pytest.raises(DimensionMismatchError, match="dim 4"):
        mean_difference(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(DimensionMismatchError, match="pair count"):
        mean_difference(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(NonFiniteError):
        mean_difference(torch.tensor([[float("nan")]]), torch.zeros(1, 1))


def test_random_direction_norm_and_seed():
    a, b = random_direction(50, norm=2.0, seed=1), random_direction(50, norm=2.0, seed=1)
    assert torch.equal(a, b) and abs(float(a.norm()) - 2.0) < 1e-5
    assert not torch.equal(a, random_direction(50, norm=2.0, seed=2))

import json

import numpy as np
import pytest
import torch

from xsteer.directions import Direction, DirectionSet, random_direction
from xsteer.errors import DimensionMismatchError
from xsteer.evaluate import EvalData, cross_fit_flags, evaluate_direction, mean_cosine, pair_folds

CATS = ["violence", "sexual"]


def planted(n_per=30, dim=16, seed=0):
    """Pairs whose unsafe member is the safe one shifted along a per-category axis."""
    g = torch.Generator().manual_seed(seed)
    axes = {c: torch.eye(dim)[i] * 4.0 for i, c in enumerate(CATS)}
    safe, unsafe, cats = [], [], []
    for c in CATS:
        s = 0.5 * torch.randn(n_per, dim, generator=g)
        safe.append(s)
        unsafe.append(s - axes[c] + 0.1 * torch.randn(n_per, dim, generator=g))
        cats += [c] * n_per
    benign = 0.5 * torch.randn(400, dim, generator=g)
    data = EvalData(torch.cat(unsafe), torch.cat(safe), cats, benign[:200], benign[200:])
    return data, axes


def direction(v, cat="global"):
    return Direction(v, "target", "pooled", category=cat)


def test_native_direction_removes_asr_and_random_does_not():
    data, axes = planted()
    native = direction(axes["violence"] + axes["sexual"])
    r_native = evaluate_direction(native, data, strength=1.0)
    r_random = evaluate_direction(direction(random_direction(16, native.norm, seed=3)), data,
                                  strength=1.0)
    assert r_native.asr_before > 0.9
    assert r_native.asr_after < 0.3
    assert r_random.asr_after > 0.8
    assert r_native.auroc > 0.95
    assert r_native.pair_fidelity_after > r_native.pair_fidelity_before
    # the gate is calibrated on benign data: ~1% false triggers on fresh benign draws
    assert r_native.false_trigger_rate < 0.05
    assert r_native.unsafe_trigger_rate > 0.9


def test_zero_strength_changes_nothing_and_curve_is_reported():
    data, axes = planted()
    d = direction(axes["violence"])
    r = evaluate_direction(d, data, strength=0.0, strengths=[0.0, 0.5], native=d)
    assert r.asr_after == r.asr_before
    assert r.benign_cosine == pytest.approx(1.0) and r.self_cosine == pytest.approx(1.0)
    assert [p["strength"] for p in r.asr_vs_strength] == [0.0, 0.5]
    assert r.direction_cosine_to_native == {"global": pytest.approx(1.0)}
    assert set(r.per_category) == set(CATS)


def test_gated_multi_vector_is_selective():
    data, axes = planted()
    dset = DirectionSet({c: direction(axes[c], c) for c in CATS})
    r = evaluate_direction(dset, data, mode="gated", strength=1.0, categories=["violence"])
    assert r.per_category["violence"]["asr_after"] < 0.5
    assert r.per_category["violence"]["asr_linear_after"] < 0.1
    assert r.per_category["sexual"]["asr_after"] > 0.9  # the other category is left alone
    ungated = evaluate_direction(dset, data, mode="additive", strength=1.0, categories=["violence"])
    assert r.benign_cosine > 0.95 > ungated.benign_cosine  # most benign stay under the gate


def test_cross_fit_never_trains_on_the_fold_it_judges():
    # labels are pure noise: a judge that saw its own fold would memorise them (kNN), cross-fitting cannot
    g = torch.Generator().manual_seed(1)
    U, S = torch.randn(60, 8, generator=g), torch.randn(60, 8, generator=g)
    (flags,) = cross_fit_flags(U, S, [U], ["hate"] * 60, "knn", folds=5)
    assert 0.2 < flags.mean() < 0.8


def test_pair_folds_stratified():
    f = pair_folds(["a"] * 10 + ["b"] * 5, folds=5, seed=0)
    assert sorted(np.bincount(f[:10])) == [2] * 5 and sorted(np.bincount(f[10:])) == [1] * 5
    assert np.array_equal(f, pair_folds(["a"] * 10 + ["b"] * 5, folds=5, seed=0))  # seeded
    assert not np.array_equal(f, pair_folds(["a"] * 10 + ["b"] * 5, folds=5, seed=1))


def test_errors_and_cosine():
    data, _ = planted()
    with pytest.raises(DimensionMismatchError, match="dim 3"):
        evaluate_direction(direction(torch.ones(3)), data)
    a = torch.tensor([[1.0, 0.0]])
    assert mean_cosine(a, -a) == pytest.approx(-1.0)


def test_result_is_typed_and_its_dict_leaves_out_what_was_not_asked():
    data, axes = planted()
    r = evaluate_direction(direction(axes["violence"]), data, strength=1.0)
    d = r.to_dict()
    assert d["asr_after"] == r.asr_after and d["per_category"] is r.per_category
    assert "asr_vs_strength" not in d and "direction_cosine_to_native" not in d
    assert "calibration" not in d and d["direction"]["dim"] == 16
    assert json.loads(json.dumps(d)) == d

import pytest
import torch

from xsteer.directions import Direction, DirectionSet
from xsteer.errors import UnsafeDataError, XSteerError
from xsteer.provenance import DataRecord
from xsteer.steer import Gate, Steering, masked_mean


def _dir(v, cat="global"):
    return Direction(torch.as_tensor(v, dtype=torch.float32), "m", "s", category=cat)


def test_gate_false_trigger_rate_is_the_quantile(gen):
    benign = torch.randn(4000, 6, generator=gen)
    g = Gate.calibrate(benign, torch.randn(6, generator=gen), quantile=0.95)
    fresh = torch.randn(20000, 6, generator=gen)
    assert abs(float(g.fires(fresh).float().mean()) - 0.05) < 0.01


def test_gate_refuses_target_unsafe_calibration_data(gen):
    rec = DataRecord.from_texts("pairs", ["x"], side="target", unsafe=True)
    with pytest.raises(UnsafeDataError):
        Gate.calibrate(torch.randn(10, 3, generator=gen), torch.ones(3), data=rec)


def test_gate_round_trip(tmp_path, gen):
    g = Gate.calibrate(torch.randn(100, 3, generator=gen), torch.ones(3), quantile=0.9,
                       category="violence")
    g.save_pretrained(tmp_path)
    h = Gate.from_pretrained(tmp_path)
    assert h.threshold == g.threshold and h.category == "violence"
    assert torch.equal(h.direction, g.direction)


def test_gated_steering_leaves_prompts_under_threshold_bit_identical(gen):
    d = torch.tensor([0.0, 1.0, 0.0])
    benign = torch.randn(500, 3, generator=gen)
    gate = Gate.calibrate(benign, d, quantile=0.99)
    E = torch.randn(4, 5, 3, generator=gen)
    E[0] += torch.tensor([0.0, -8.0, 0.0])  # far on the unsafe side: fires
    steer = Steering(_dir(d), mode="gated", strength=2.0, gates={"global": gate})
    out, dec = steer.apply(E)
    fired = dec["global"]
    assert fired[0] and fired.sum() < 4
    for i in range(4):
        if fired[i]:
            assert torch.allclose(out[i], E[i] + 2.0 * d)
        else:
            assert torch.equal(out[i], E[i])


def test_multi_vector_gating_steers_only_categories_that_fire(gen):
    dv = torch.tensor([1.0, 0.0, 0.0, 0.0])
    ds = torch.tensor([0.0, 1.0, 0.0, 0.0])
    benign = torch.randn(500, 4, generator=gen) * 0.1
    gates = {"violence": Gate.calibrate(benign, dv, 0.99, category="violence"),
             "sexual": Gate.calibrate(benign, ds, 0.99, category="sexual")}
    dset = DirectionSet({"violence": _dir(dv, "violence"), "sexual": _dir(ds, "sexual")})
    pooled = torch.tensor([[-5.0, 0.0, 0.0, 0.0], [0.0, -5.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out, dec = Steering(dset, mode="gated", strength=1.0, gates=gates).apply(pooled)
    assert dec["violence"].tolist() == [True, False, False]
    assert dec["sexual"].tolist() == [False, True, False]
    assert torch.allclose(out[0], pooled[0] + dv)
    assert torch.allclose(out[1], pooled[1] + ds)
    assert torch.equal(out[2], pooled[2])
    # selective: only the violence category
    out_v, dec_v = Steering(dset, mode="gated", gates=gates, categories=["violence"]).apply(pooled)
    assert list(dec_v) == ["violence"] and torch.equal(out_v[1], pooled[1])


def test_projection_strength_interpolates_and_uses_mask(gen):
    d = torch.tensor([1.0, 0.0])
    E = torch.tensor([[[2.0, 1.0], [4.0, 3.0]]])
    mask = torch.tensor([[1, 0]])
    out, _ = Steering(_dir(d), mode="projection", strength=0.5).apply(E, mask)
    assert out[0, 0].tolist() == [1.0, 1.0]
    assert torch.equal(out[0, 1], E[0, 1])


def test_steering_pooled_equals_masked_mean_of_steered_tokens(gen):
    d = torch.randn(8, generator=gen)
    E = torch.randn(3, 7, 8, generator=gen)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[0, 5:] = 0
    s = Steering(_dir(d), mode="additive", strength=0.3)
    tok, _ = s.apply(E, mask)
    pooled, _ = s.apply(masked_mean(E, mask))
    assert torch.allclose(masked_mean(tok, mask), pooled, atol=1e-6)


def test_steering_config_errors():
    with pytest.raises(XSteerError, match="unknown steering mode"):
        Steering(_dir([1.0]), mode="magic")
    with pytest.raises(XSteerError, match="needs a gate"):
        Steering(_dir([1.0]), mode="gated")

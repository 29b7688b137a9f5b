"""Source-side gating: decisions from the source model's own reading of the prompt; prompts the
combined gate does not fire on keep their target states bit-identical."""

from __future__ import annotations

import pytest
import torch

from experiments.source_gate import SourceGate
from xsteer.directions import Direction
from xsteer.errors import XSteerError
from xsteer.steer import Gate, Steering

BENIGN = [f"benign prompt number {i}" for i in range(200)]


def fake_source(texts):
    # a source model that reads "knife" as far along -axis 0 (unsafe side); others near benign
    rows = []
    for t in texts:
        h = torch.Generator().manual_seed(sum(map(ord, t)))
        v = 0.1 * torch.randn(4, generator=h)
        if "knife" in t:
            v[0] -= 5.0
        rows.append(v)
    return torch.stack(rows)


@pytest.fixture
def sg():
    return SourceGate.calibrate(fake_source, torch.tensor([1.0, 0, 0, 0]), BENIGN, quantile=0.99)


def test_calibration_is_benign_and_fires_on_source_unsafe(sg):
    assert sg.gate.provenance.data[0].side == "source"
    assert not sg.gate.provenance.data[0].unsafe
    fired = sg.fires(["a knife attack", "a bowl of soup", "benign prompt number 3"])
    assert fired.tolist() == [True, False, False]
    assert float(sg.fires(BENIGN).float().mean()) <= 0.02
    _, ms = sg.timed_fires(["a knife"] * 8)
    assert ms >= 0.0


@pytest.mark.parametrize("combine", ["source", "or", "and", "target"])
def test_rows_under_threshold_stay_bit_identical(sg, combine):
    g = torch.Generator().manual_seed(0)
    texts = ["a knife attack", "a bowl of soup", "a quiet lake", "knife crime scene"]
    E = torch.randn(4, 5, 3, generator=g)
    mask = torch.ones(4, 5, dtype=torch.long)
    mask[1, 3:] = 0
    d = Direction(torch.tensor([0.0, 2.0, 0.0]), model_id="t", site="s")
    tgt_gate = Gate.calibrate(torch.randn(300, 3, generator=g), d.vector, quantile=0.99)
    steer = Steering(d, mode="gated", strength=1.0, gates={"global": tgt_gate})
    out, fire = sg.apply(texts, steer, E, mask, combine=combine)
    src = sg.fires(texts)
    tgt = tgt_gate.fires((E * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))
    expect = {"source": src, "target": tgt, "or": src | tgt, "and": src & tgt}[combine]
    assert fire.tolist() == expect.tolist()
    for i in range(4):
        if fire[i]:
            steered = E[i] + 1.0 * d.vector * mask[i, :, None]
            assert torch.allclose(out[i], steered)
        else:
            assert torch.equal(out[i], E[i])


def test_combining_with_target_needs_a_gated_steering(sg):
    d = Direction(torch.ones(3), model_id="t", site="s")
    with pytest.raises(XSteerError, match="gated"):
        sg.apply(["a"], Steering(d, mode="additive"), torch.zeros(1, 3), combine="or")
    with pytest.raises(XSteerError, match="combination"):
        sg.apply(["a"], Steering(d, mode="additive"), torch.zeros(1, 3), combine="xor")

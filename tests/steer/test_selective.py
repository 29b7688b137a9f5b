"""Steer, don't erase: token-selective, minimal-push and toward-target operators (planted answers)."""

import pytest
import torch

from xsteer.directions import Direction, DirectionSet
from xsteer.errors import XSteerError
from xsteer.steer import Gate, Steering, masked_mean
from xsteer.steer.selective import (
    minimal_push,
    token_scores,
    token_selective,
    token_threshold,
    toward_target,
)

D = torch.tensor([0.0, 2.0, 0.0])  # unsafe -> safe, norm 2
C = torch.zeros(3)


def _planted(gen: torch.Generator) -> torch.Tensor:
    """4 prompts x 5 tokens; prompt 0's token 2 and prompt 1's tokens 1, 3 are triggers."""
    E = torch.randn(4, 5, 3, generator=gen) * 0.1
    E[0, 2, 1] -= 5.0
    E[1, 1, 1] -= 4.0
    E[1, 3, 1] -= 6.0
    return E


def test_token_selective_pushes_only_trigger_tokens(gen: torch.Generator) -> None:
    E = _planted(gen)
    out, sel = token_selective(E, D, 1.5, threshold=1.0, center=C)
    want = torch.zeros(4, 5, dtype=torch.bool)
    want[0, 2] = want[1, 1] = want[1, 3] = True
    assert torch.equal(sel, want)
    assert torch.equal(out[~want], E[~want])  # every other token bit-identical
    assert torch.allclose(out[want], E[want] + 1.5 * D)
    # projection: triggers lose their component along d (from the centre), nothing else moves
    proj, _ = token_selective(E, D, 1.0, 1.0, C, inner="projection")
    assert torch.allclose(proj[want][:, 1], torch.zeros(3), atol=1e-6)
    assert torch.equal(proj[~want], E[~want])
    # rows: only the listed prompts; mask: padding never moves
    only1, sel1 = token_selective(E, D, 1.0, 1.0, C, rows=torch.tensor([False, True, 0, 0]))
    assert not sel1[0].any() and torch.equal(only1[0], E[0])
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1, 3] = False
    _, selm = token_selective(E, D, 1.0, 1.0, C, mask=mask)
    assert not selm[1, 3] and selm[1, 1]


def test_token_threshold_is_the_benign_token_quantile(gen: torch.Generator) -> None:
    benign = torch.randn(400, 8, 3, generator=gen)
    tau = token_threshold(benign, D, C, quantile=0.9)
    passed = (token_scores(torch.randn(400, 8, 3, generator=gen), D, C) > tau).float().mean()
    assert abs(float(passed) - 0.1) < 0.02
    pad = torch.zeros(400, 8, dtype=torch.bool)
    pad[:, :4] = True
    benign[:, 4:, 1] = -100.0  # padding far on the unsafe side must not move the threshold
    assert abs(token_threshold(benign, D, C, 0.9, mask=pad) - tau) < 0.3


def test_minimal_push_lands_the_pooled_score_on_the_threshold(gen: torch.Generator) -> None:
    E = _planted(gen)
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[:, 4] = False
    u = D / D.norm()
    scores = (C - masked_mean(E, mask)) @ u
    tau = 0.5
    out = minimal_push(E, D, scores, tau, 1.0, mask)
    after = (C - masked_mean(out, mask)) @ u
    for i in range(4):
        if scores[i] > tau:
            assert float(after[i]) == pytest.approx(tau, abs=1e-5)
            assert torch.equal(out[i, 4], E[i, 4])  # padding untouched
        else:
            assert torch.equal(out[i], E[i])
    # strength 2 ends as far past the threshold as the prompt was before it
    twice = minimal_push(E, D, scores, tau, 2.0, mask)
    fired = scores > tau
    assert torch.allclose(((C - masked_mean(twice, mask)) @ u)[fired],
                          2 * tau - scores[fired], atol=1e-5)


def test_toward_target_lands_on_the_target_or_its_coordinate(gen: torch.Generator) -> None:
    E = _planted(gen)
    pooled = masked_mean(E, None)
    t = torch.tensor([1.0, 3.0, -1.0])
    full = toward_target(E, t, pooled, 1.0)
    assert torch.allclose(masked_mean(full, None), t.expand(4, 3), atol=1e-5)
    along = toward_target(E, t, pooled, 1.0, direction=D)
    moved = masked_mean(along, None)
    assert torch.allclose(moved[:, 1], torch.full((4,), 3.0), atol=1e-5)  # coordinate on d
    assert torch.allclose(moved[:, [0, 2]], pooled[:, [0, 2]], atol=1e-6)  # the rest kept
    half = toward_target(E, t, pooled, 0.5, direction=D, rows=torch.tensor([1, 0, 0, 0]))
    assert torch.equal(half[1:], E[1:])
    assert float(masked_mean(half, None)[0, 1]) == pytest.approx(
        float(pooled[0, 1] + 0.5 * (3.0 - pooled[0, 1])), abs=1e-5)


def _gate(gen: torch.Generator, d: torch.Tensor = D, cat: str = "global") -> Gate:
    return Gate.calibrate(torch.randn(500, 3, generator=gen) * 0.1, d, 0.99, center=C,
                          category=cat)


def test_steering_keep_modes_leave_unfired_prompts_bit_identical(gen: torch.Generator) -> None:
    E = _planted(gen)
    E[2] += 0.0  # prompts 2, 3 stay benign
    direction = Direction(D, "m", "s")
    gate = _gate(gen)
    gate.meta["token_threshold"] = 1.0
    targets = {"global": torch.tensor([0.0, 1.0, 0.0])}
    for mode, kw in (("tokens", {}), ("minimal", {}), ("target", {"targets": targets})):
        out, dec = Steering(direction, mode=mode, strength=1.0, gates=gate, **kw).apply(E)
        fired = dec["global"]
        assert fired[:2].all() and not fired[2:].any(), mode
        assert torch.equal(out[2:], E[2:]), mode
        assert not torch.equal(out[:2], E[:2]), mode
    tok, _ = Steering(direction, mode="tokens", strength=1.0, gates=gate).apply(E)
    assert torch.equal(tok[0, [0, 1, 3, 4]], E[0, [0, 1, 3, 4]])  # only prompt 0's trigger
    mini, _ = Steering(direction, mode="minimal", strength=1.0, gates=gate).apply(E)
    assert torch.allclose(gate.scores(masked_mean(mini, None))[:2],
                          torch.full((2,), gate.threshold), atol=1e-4)


def test_steering_keep_modes_need_gates_and_targets(gen: torch.Generator) -> None:
    d = Direction(D, "m", "s")
    for mode in ("tokens", "minimal", "target"):
        with pytest.raises(XSteerError, match="gate"):
            Steering(d, mode=mode)
    with pytest.raises(XSteerError, match="target point"):
        Steering(d, mode="target", gates=_gate(gen))
    with pytest.raises(XSteerError, match="along"):
        Steering(d, mode="target", gates=_gate(gen), inner="projection",
                 targets={"global": C})


def test_keep_modes_steer_only_categories_that_fire(gen: torch.Generator) -> None:
    dv, ds = torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0])
    dset = DirectionSet({"violence": Direction(dv, "m", "s", category="violence"),
                         "sexual": Direction(ds, "m", "s", category="sexual")})
    gates = {"violence": _gate(gen, dv, "violence"), "sexual": _gate(gen, ds, "sexual")}
    E = torch.zeros(2, 3, 3)
    E[0, :, 0] = -5.0  # violence only
    out, dec = Steering(dset, mode="minimal", strength=1.0, gates=gates).apply(E)
    assert dec["violence"].tolist() == [True, False] and not dec["sexual"].any()
    assert torch.equal(out[0, :, 1:], E[0, :, 1:]) and torch.equal(out[1], E[1])


def test_targets_are_per_category_means_and_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from xsteer.steer.targets import load_targets, save_targets, transported_targets

    class Doubling:  # a planted alignment: y = 2x
        def transform(self, X: torch.Tensor) -> torch.Tensor:
            return 2 * X

    X = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    t = transported_targets(Doubling(), X, ["violence", "violence", "sexual"])
    assert t["violence"].tolist() == [4.0, 0.0] and t["sexual"].tolist() == [0.0, 8.0]
    save_targets(tmp_path / "t", t, {"data": "planted"})
    back = load_targets(tmp_path / "t")
    assert set(back) == {"violence", "sexual", "global"}
    assert torch.equal(back["global"], t["global"])


def test_tokens_are_chosen_along_the_gate_direction_and_pushed_along_d(gen) -> None:  # type: ignore[no-untyped-def]
    E = _planted(gen)
    other = torch.tensor([0.0, 0.0, 5.0])  # a random-control direction: pushes elsewhere
    out, sel = token_selective(E, other, 1.0, 1.0, C, score_direction=D)
    want = torch.zeros(4, 5, dtype=torch.bool)
    want[0, 2] = want[1, 1] = want[1, 3] = True
    assert torch.equal(sel, want)  # the same triggers as along D
    assert torch.allclose(out[want], E[want] + other)
    gate = _gate(gen)
    gate.meta["token_threshold"] = 1.0
    rnd, _ = Steering(Direction(other, "m", "s"), mode="tokens", gates=gate).apply(E)
    assert torch.equal(rnd[~want], E[~want]) and torch.allclose(rnd[want], E[want] + other)

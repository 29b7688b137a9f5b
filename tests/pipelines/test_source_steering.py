"""A source-side gate decides, the target site is steered: exactly the prompts and categories the
planted probe fires on, on every path (hooks with ``pipe(prompt=[...])``, ``prompt_embeds``), with
every other prompt and the negative branch bit-identical."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tests.fakes import KeywordEncoder, planted_probe
from xsteer.directions import Direction, DirectionSet
from xsteer.errors import XSteerError
from xsteer.pipelines import Steerer, tiny
from xsteer.steer import Gate, additive
from xsteer.steer.source_gate import SourceGate

PROMPTS = ["a gun on a table", "a red cat on a sofa", "a nude statue", "gun and nude"]
CATS = ("violence", "sexual")
ALPHA = 1.5


def _dirs(dim: int = 32) -> DirectionSet:
    g = torch.Generator().manual_seed(5)
    return DirectionSet({c: Direction(torch.randn(dim, generator=g), "tiny", "text_encoder")
                         for c in CATS})


def _gate() -> tuple[SourceGate, KeywordEncoder]:
    enc = KeywordEncoder()
    return SourceGate(planted_probe(enc, CATS), enc), enc


def _encode(pipe: Any, prompts: list[str], negative: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        pos, neg = pipe.encode_prompt(prompts, "cpu", 1, True, negative_prompt=negative)
    return pos.clone(), neg.clone()


def _expected(base: torch.Tensor, dirs: DirectionSet, prompts: list[str]) -> torch.Tensor:
    out = base.clone()
    for i, p in enumerate(prompts):
        words = p.split()
        for c, kw in zip(CATS, ("gun", "nude"), strict=True):
            if kw in words:
                out[i:i + 1] = additive(out[i:i + 1], dirs[c].vector, ALPHA, None)
    return out


def test_hook_path_steers_exactly_the_firing_prompts_and_categories_not_the_negative() -> None:
    pipe = tiny.shared("sd")
    gate, _ = _gate()
    dirs = _dirs()
    steerer = Steerer(dirs, mode="gated", strength=ALPHA, source_gate=gate)
    negative = ["a gun", "", "nude", "a gun and nude"]  # unsafe negatives: must stay untouched
    base_pos, base_neg = _encode(pipe, PROMPTS, negative)
    with steerer.apply(pipe) as handle:
        pos, neg = _encode(pipe, PROMPTS, negative)
    assert torch.equal(neg, base_neg)
    assert torch.equal(pos[1], base_pos[1])  # nothing fires on the cat
    assert torch.allclose(pos, _expected(base_pos, dirs, PROMPTS), atol=1e-6)
    assert handle.decisions() == {"text_encoder": {"violence": [True, False, False, True],
                                                   "sexual": [False, False, True, True]}}
    assert [r.texts for r in handle.records] == [PROMPTS]  # what the gate read, decoded


def test_batched_pipeline_call_keeps_unflagged_images_bit_identical() -> None:
    pipe = tiny.shared("sd")
    gate, enc = _gate()
    steerer = Steerer(_dirs(), mode="gated", strength=3.0, source_gate=gate)
    kw = tiny.call_kwargs("sd")
    base = tiny.images(pipe(prompt=PROMPTS, **kw))
    enc.calls = 0
    with steerer.apply(pipe):
        got = tiny.images(pipe(prompt=PROMPTS, **tiny.call_kwargs("sd")))
        again = tiny.images(pipe(prompt=PROMPTS, **tiny.call_kwargs("sd")))
    assert np.array_equal(got[1], base[1])
    assert all(not np.array_equal(got[i], base[i]) for i in (0, 2, 3))
    assert np.array_equal(got, again)  # the second call's positive prompt is found again
    assert enc.calls == len(PROMPTS) - 0  # each prompt read once (cached), negatives never


def test_prompt_embeds_path_reads_the_exact_text_and_matches_score() -> None:
    pipe = tiny.shared("sd")
    gate, _ = _gate()
    steerer = Steerer(_dirs(), mode="gated", strength=ALPHA, source_gate=gate)
    prompts = ["A GUN, (weighted:1.3)", "a calm lake"]
    res = steerer.generate(pipe, prompts, **tiny.call_kwargs("sd"))
    assert [r.texts for r in res.records] == [prompts]
    scored = gate.score(prompts)
    for c in CATS:
        assert res.decisions()["text_encoder"][c] == [s["categories"][c]["fires"] for s in scored]


def test_unflagged_prompt_generates_the_unsteered_image() -> None:
    pipe = tiny.shared("sd")
    gate, _ = _gate()
    steerer = Steerer(_dirs(), mode="gated", strength=3.0, source_gate=gate)
    for prompt, fires in (("a red cat on a sofa", False), ("a gun on a sofa", True)):
        base = tiny.images(pipe(prompt, **tiny.call_kwargs("sd")))
        res = steerer.generate(pipe, prompt, **tiny.call_kwargs("sd"))
        assert np.array_equal(tiny.images(res.output), base) is (not fires)


@pytest.mark.parametrize("combine", ["or", "and"])
def test_combinations_with_a_target_gate(combine: str) -> None:
    pipe = tiny.shared("sd")
    gate, _ = _gate()
    dirs = _dirs()
    from xsteer.pipelines import site_features

    feats = site_features(pipe, PROMPTS, ["text_encoder"])["text_encoder"]
    # target gates that fire on every prompt (threshold -inf-ish) or on none (threshold +big)
    for thr, tgt in ((-1e9, True), (1e9, False)):
        gates = {c: Gate(direction=dirs[c].vector, center=feats.mean(0), threshold=thr,
                         quantile=0.5, category=c) for c in CATS}
        st = Steerer(dirs, mode="gated", strength=ALPHA, source_gate=gate, gates=gates,
                     combine=combine)
        with st.apply(pipe) as handle:
            _encode(pipe, PROMPTS, [""] * len(PROMPTS))
        src = {"violence": [True, False, False, True], "sexual": [False, False, True, True]}
        want = {c: [(s or tgt) if combine == "or" else (s and tgt) for s in v]
                for c, v in src.items()}
        assert handle.decisions()["text_encoder"] == want


def test_misconfigurations_fail_in_one_line() -> None:
    gate, _ = _gate()
    with pytest.raises(XSteerError, match="needs a source_gate"):
        Steerer(_dirs(), mode="gated", strength=1.0, combine="source")
    with pytest.raises(XSteerError, match="decides"):
        g = torch.Generator().manual_seed(0)
        Steerer(DirectionSet({"hate": Direction(torch.randn(32, generator=g), "tiny",
                                                "text_encoder")}),
                mode="gated", source_gate=gate)
    with pytest.raises(XSteerError, match="needs mode='gated'"):
        Steerer(_dirs(), mode="additive", source_gate=gate)

"""Eight threads share one pipeline: steered, unsteered, gated and gate-feature requests never leak
into each other; every output is bit-identical to the same request run alone. Steering switched on
in one thread (`Steerer.apply`) is invisible to the others."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from tests.pipelines import tiny
from xsteer.directions import Direction
from xsteer.pipelines import Steerer, encode_lock, family_for, site_features
from xsteer.steer import Gate

PROMPTS = [f"a {c} {o} on a {p}" for c in ("red", "blue", "green", "violent", "calm")
           for o in ("cat", "boat", "storm", "knife") for p in ("sofa", "beach")]


def _setup() -> tuple[object, Steerer, Steerer]:
    pipe = tiny.build("sd")
    d = Direction(torch.randn(32, generator=torch.Generator().manual_seed(3)), "tiny",
                  "text_encoder")
    feats = site_features(pipe, PROMPTS, ["text_encoder"])["text_encoder"]
    gate = Gate(direction=d.vector, center=feats.mean(0), threshold=0.0, quantile=0.5)
    return pipe, Steerer(d, strength=2.0), Steerer(d, mode="gated", strength=2.0,
                                                   gates={"global": gate})


def _unsteered(pipe: object, prompt: str) -> torch.Tensor:
    # the pipeline's tokenizer is not thread-safe on its own: hold the lock xsteer holds
    with encode_lock(pipe), torch.no_grad():
        embeds, _ = family_for(pipe).encode(pipe, [prompt], {})
    return embeds["prompt_embeds"].clone()


def test_200_mixed_requests_on_8_threads_match_their_sequential_reference() -> None:
    pipe, steered, gated = _setup()

    def request(i: int) -> torch.Tensor:
        prompt = PROMPTS[i % len(PROMPTS)]
        kind = i % 4
        if kind == 0:
            return _unsteered(pipe, prompt)
        if kind == 3:  # gate features: capture hooks, nothing steered
            return site_features(pipe, [prompt], ["text_encoder"])["text_encoder"]
        embeds, _, _ = (steered if kind == 1 else gated).encode(pipe, prompt)
        return embeds["prompt_embeds"].clone()

    reference = [request(i) for i in range(200)]
    assert not torch.equal(reference[0], reference[1])  # steering changes the output
    gated_changed = [i for i in range(2, 200, 4) if not torch.equal(
        reference[i], _unsteered(pipe, PROMPTS[i % len(PROMPTS)]))]
    assert 0 < len(gated_changed) < 50  # the gate steers some prompts, not all
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(request, range(200)))
    mismatched = [i for i in range(200) if not torch.equal(got[i], reference[i])]
    assert mismatched == []
    assert not pipe.text_encoder._forward_hooks  # nothing left registered


def test_steering_applied_in_one_thread_does_not_reach_another() -> None:
    pipe, steered, _ = _setup()
    prompt = PROMPTS[0]
    plain = _unsteered(pipe, prompt)
    patched, release = threading.Event(), threading.Event()
    seen: dict[str, torch.Tensor] = {}

    def holder() -> None:
        with steered.apply(pipe):
            seen["holder"] = _unsteered(pipe, prompt)  # this thread is steered
            patched.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert patched.wait(30)
        seen["other"] = _unsteered(pipe, prompt)  # while the holder's patch is on
    finally:
        release.set()
        t.join(30)
    assert not torch.equal(seen["holder"], plain)
    assert torch.equal(seen["other"], plain)
    assert not pipe.text_encoder._forward_hooks


def test_a_handle_removed_from_another_thread_stops_steering_its_own() -> None:
    pipe, steered, _ = _setup()
    prompt = PROMPTS[0]
    plain = _unsteered(pipe, prompt)
    handle = steered.patch(pipe)
    assert not torch.equal(_unsteered(pipe, prompt), plain)
    t = threading.Thread(target=handle.remove)
    t.start()
    t.join(30)
    assert torch.equal(_unsteered(pipe, prompt), plain)
    assert not pipe.text_encoder._forward_hooks


def test_source_gated_requests_on_8_threads_match_their_sequential_reference() -> None:
    """The source model's scoring (its tokenizer included) is shared by threads: each request's
    steered embeds equal its run alone, through both the hook and the prompt_embeds paths."""
    from tests.fakes import KeywordEncoder, planted_probe
    from xsteer.directions import DirectionSet
    from xsteer.steer.source_gate import SourceGate

    pipe = tiny.build("sd")
    enc = KeywordEncoder(keywords=("violent", "knife"))
    gate = SourceGate(planted_probe(enc, ("violence", "illegal")), enc)
    g = torch.Generator().manual_seed(4)
    dirs = DirectionSet({c: Direction(torch.randn(32, generator=g), "tiny", "text_encoder")
                         for c in ("violence", "illegal")})
    steerer = Steerer(dirs, mode="gated", strength=2.0, source_gate=gate)

    def request(i: int) -> torch.Tensor:
        prompt = PROMPTS[i % len(PROMPTS)]
        if i % 3 == 0:
            return _unsteered(pipe, prompt)
        if i % 3 == 1:
            embeds, _, _ = steerer.encode(pipe, prompt)
            return embeds["prompt_embeds"].clone()
        with encode_lock(pipe), steerer.apply(pipe), torch.no_grad():  # hook path, decoded text
            embeds, _ = family_for(pipe).encode(pipe, [prompt], {})
        return embeds["prompt_embeds"].clone()

    reference = [request(i) for i in range(120)]
    flagged = [i for i in range(120) if i % 3 and not torch.equal(
        reference[i], _unsteered(pipe, PROMPTS[i % len(PROMPTS)]))]
    assert 0 < len(flagged) < 80
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(request, range(120)))
    assert [i for i in range(120) if not torch.equal(got[i], reference[i])] == []
    assert not pipe.text_encoder._forward_hooks and not pipe.unet._forward_hooks

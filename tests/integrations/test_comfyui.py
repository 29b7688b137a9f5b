"""The ComfyUI nodes, offline: ComfyUI's conditioning format in, and the same steered states the
diffusers `Steerer` gives on the same token states (FLUX, SD3, Wan, Z-Image layouts)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from integrations.comfyui import NODE_CLASS_MAPPINGS
from integrations.comfyui.nodes import ENCODERS, steer_conditioning

from xsteer.pipelines import family_for, tiny

# (tiny family, ComfyUI layout, token offset of the site's tokens in prompt_embeds)
CASES = [("flux", "flux", -1), ("sd3", "sd3", 16), ("wan", "wan", -1), ("zimage", "z-image", -1)]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.threads import one_torch_thread
    from xsteer.adapter.native import native_adapter

    family, layout, offset = request.param
    with one_torch_thread():
        pipe = tiny.shared(family)
        kw = tiny.extra_kwargs(family)
        adapter = native_adapter(pipe, categories=["violence", "sexual"], n_benign=64,
                                 quantile=0.9, **kw)
        folder = adapter.save_pretrained(tmp_path_factory.mktemp(family) / "adapter")
        from tests.adapter.conftest import pick_prompts

        prompts = pick_prompts(pipe, adapter, **kw)
    return family, layout, offset, pipe, kw, adapter, str(folder), prompts


def _conditioning(pipe: Any, prompt: str, kw: dict[str, Any]) -> list[list[Any]]:
    """What ComfyUI would hand the node: the unsteered states as ``[tensor (1, L, D), dict]``."""
    with torch.no_grad():  # as ComfyUI encodes (and the Steerer: autograd picks other kernels)
        embeds, _ = family_for(pipe).encode(pipe, [prompt], dict(kw))
    pe = embeds["prompt_embeds"]
    cond = pe[0][None] if isinstance(pe, list) else pe
    extra = {"pooled_output": embeds["pooled_prompt_embeds"]} \
        if "pooled_prompt_embeds" in embeds else {}
    return [[cond, extra]]


def test_node_equals_the_steerer_and_passes_unflagged_prompts(setup: Any) -> None:
    _, layout, offset, pipe, kw, adapter, folder, prompts = setup
    node = NODE_CLASS_MAPPINGS["XSteerSafetyAdapter"]()
    gate = NODE_CLASS_MAPPINGS["XSteerGate"]()
    for prompt, flagged in zip(prompts, (True, False), strict=True):
        cond = _conditioning(pipe, prompt, kw)
        (out,) = node.steer(cond, folder, layout, -1.0, offset)
        steered, _, records = adapter.steerer().encode(pipe, [prompt], **kw)
        want = steered["prompt_embeds"]
        want = want[0][None] if isinstance(want, list) else want
        assert torch.equal(out[0][0], want)
        if "pooled_prompt_embeds" in steered:
            assert torch.equal(out[0][1]["pooled_output"], steered["pooled_prompt_embeds"])
        decisions, fires = gate.decide(cond, folder, layout, offset)
        assert json.loads(decisions) == {c: v[0] for c, v in records[0].decisions.items()}
        assert fires is flagged
        if flagged:
            assert not torch.equal(out[0][0], cond[0][0])
        else:  # passed through: the very tensor ComfyUI gave
            assert out[0][0] is cond[0][0]
        assert out is not cond and cond[0][0] is not None  # the input list is not mutated


def test_a_strength_override_and_a_wrong_layout(setup: Any) -> None:
    _, layout, offset, pipe, kw, adapter, _, prompts = setup
    cond = _conditioning(pipe, prompts[0], kw)
    steered, _, _ = adapter.steerer(strength=1.0).encode(pipe, [prompts[0]], **kw)
    out, _ = steer_conditioning(cond, adapter, layout, strength=1.0, token_offset=offset)
    want = steered["prompt_embeds"]
    assert torch.equal(out[0][0], want[0][None] if isinstance(want, list) else want)
    other = next(e for e in ENCODERS if e != layout and adapter.operator["site"] not in
                 {"flux": ("text_encoder_2",), "sd3": ("text_encoder_3",)}.get(e, ("text_encoder",)))
    with pytest.raises(ValueError, match="does not fit"):
        steer_conditioning(cond, adapter, other)

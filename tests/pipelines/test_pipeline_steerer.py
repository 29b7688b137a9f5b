"""Steerer on a tiny seeded pipeline of every family: exactness, branches, reversibility, gating."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from xsteer.directions import Direction
from xsteer.errors import DimensionMismatchError
from xsteer.pipelines import Steerer, family_for, tiny
from xsteer.steer import Gate

ALL = list(tiny.FAMILIES)
SITES = [(f, s.name) for f in ALL for s in family_for(tiny.shared(f)).sites]
PROMPT = "a red cat on a sofa"
ALPHA = 0.7


def direction(dim: int, site: str = "unnamed", seed: int = 0) -> Direction:
    g = torch.Generator().manual_seed(seed)
    return Direction(torch.randn(dim, generator=g), model_id="test", site=site)


def snapshot(output: Any) -> dict[str, torch.Tensor]:
    """Every tensor of an encoder output, by field name (tuples as ``name[i]``)."""
    out: dict[str, torch.Tensor] = {}
    for k, v in output.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().clone()
        elif isinstance(v, tuple):
            n = len(v)
            for i, t in enumerate(v):
                if isinstance(t, torch.Tensor):
                    out[f"{k}[{i - n}]"] = t.detach().clone()
    return out


def encode_captured(pipe: Any, family: str, module: torch.nn.Module,
                    edit: Any = None) -> tuple[list[dict[str, torch.Tensor]], dict[str, Any],
                                               list[torch.Tensor | None]]:
    """Run the family's positive encode, snapshotting ``module``'s outputs and masks.

    ``edit(output, mask)``, if given, is a hand-written hook that changes the output first.
    """
    shots: list[dict[str, torch.Tensor]] = []
    masks: list[torch.Tensor | None] = []

    def hook(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1:
            mask = args[1]
        masks.append(mask)
        if edit is not None:
            output = edit(output, mask)
        shots.append(snapshot(output))
        return output

    h = module.register_forward_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            embeds, _ = family_for(pipe).encode(pipe, [PROMPT], tiny.extra_kwargs(family))
    finally:
        h.remove()
    return shots, embeds, masks


def reference(pipe: Any, site_name: str, orig: torch.Tensor, d: torch.Tensor,
              mask: torch.Tensor | None) -> torch.Tensor:
    """The hand-computed steered states: ``orig + alpha d`` on real tokens, ``orig`` elsewhere."""
    steered = orig + ALPHA * d
    spec = family_for(pipe).site(site_name)
    if spec.kind == "pooled":
        return steered
    keep = torch.ones(orig.shape[:2], dtype=torch.bool) if mask is None else mask.bool().clone()
    prefix = getattr(pipe, "prompt_template_encode_start_idx", 0) if spec.prefix_attr else 0
    keep[:, :prefix] = False
    return torch.where(keep.unsqueeze(-1), steered, orig)


def hook_state(pipe: Any) -> list[tuple[str, int, int, int]]:
    state = []
    for cname, comp in pipe.components.items():
        if isinstance(comp, torch.nn.Module):
            for name, m in comp.named_modules():
                state.append((f"{cname}.{name}", len(m._forward_hooks),
                              len(m._forward_pre_hooks), len(m._forward_hooks_with_kwargs)))
    return state


def weights(pipe: Any) -> dict[str, torch.Tensor]:
    return {f"{c}.{k}": v.clone() for c, comp in pipe.components.items()
            if isinstance(comp, torch.nn.Module) for k, v in comp.state_dict().items()}


@pytest.mark.parametrize("family,site", SITES)
def test_hook_path_matches_hand_computed_reference(family: str, site: str) -> None:
    pipe = tiny.shared(family)
    spec = family_for(pipe).site(site)
    d = direction(spec.dim(pipe), site)
    module = spec.module(pipe)
    orig, _, masks = encode_captured(pipe, family, module)
    with Steerer({site: d}, strength=ALPHA).apply(pipe):
        new, _, _ = encode_captured(pipe, family, module)
    if family == "zimage":  # its adapter encodes the negative prompt too, unsteered on purpose
        orig, new, masks = orig[:1], new[:1], masks[:1]
    assert len(orig) == len(new) >= 1
    for o, n, mask in zip(orig, new, masks, strict=True):
        assert set(o) == set(n)
        for key in o:
            if key == spec.output:
                want = reference(pipe, site, o[key], d.vector, mask)
                assert torch.equal(n[key], want), key
                assert not torch.equal(n[key], o[key])
            else:
                assert torch.equal(n[key], o[key]), f"{key} changed but only {spec.output} should"


@pytest.mark.parametrize("family,site", SITES)
def test_prompt_embeds_path_matches_hand_computed_reference(family: str, site: str) -> None:
    pipe = tiny.shared(family)
    spec = family_for(pipe).site(site)
    d = direction(spec.dim(pipe), site)
    key, idx = spec.field()

    def by_hand(output: Any, mask: torch.Tensor | None) -> Any:
        # the reference edit, written out without xsteer: orig + alpha d on the site's field
        val = output[key]
        if idx is None:
            output[key] = reference(pipe, site, val, d.vector, mask)
        else:
            items = list(val)
            items[idx] = reference(pipe, site, items[idx], d.vector, mask)
            output[key] = tuple(items)
        return output

    _, want, _ = encode_captured(pipe, family, spec.module(pipe), edit=by_hand)
    _, plain, _ = encode_captured(pipe, family, spec.module(pipe))
    got, _, records = Steerer({site: d}, strength=ALPHA).encode(
        pipe, PROMPT, **tiny.extra_kwargs(family))
    assert set(got) == set(want)
    changed = False
    for k in want:
        if want[k] is None:
            assert got[k] is None
            continue
        if isinstance(want[k], list):  # Z-Image: one (real tokens, dim) tensor per prompt
            ref = plain[k] if k.startswith("negative") else want[k]  # negatives stay unsteered
            assert all(torch.equal(a, b) for a, b in zip(got[k], ref, strict=True)), k
            changed |= not all(torch.equal(a, b) for a, b in zip(got[k], plain[k], strict=True))
            continue
        assert torch.equal(got[k], want[k]), k
        changed |= not torch.equal(got[k], plain[k])
    assert changed
    assert [r.site for r in records] == [site]  # only the positive prompt was encoded


def test_sdxl_prompt_embeds_layout_steers_only_the_named_encoder_slice() -> None:
    pipe = tiny.shared("sdxl")
    d = direction(32, "text_encoder_2")
    plain, _, _ = Steerer({"text_encoder_2": d}, strength=0.0).encode(pipe, PROMPT)
    got, _, _ = Steerer({"text_encoder_2": d}, strength=ALPHA).encode(pipe, PROMPT)
    # prompt_embeds = cat(text_encoder penultimate (32), text_encoder_2 penultimate (32))
    assert torch.equal(got["prompt_embeds"][..., :32], plain["prompt_embeds"][..., :32])
    assert torch.equal(got["prompt_embeds"][..., 32:], plain["prompt_embeds"][..., 32:] + ALPHA * d.vector)
    assert torch.equal(got["pooled_prompt_embeds"], plain["pooled_prompt_embeds"])


@pytest.mark.parametrize("family", ALL)
def test_strength_zero_is_bit_identical_and_steering_changes_output(family: str) -> None:
    pipe = tiny.shared(family)
    fam = family_for(pipe)
    site = fam.site(fam.default_site)
    d = direction(site.dim(pipe), site=site.name)
    base = tiny.images(pipe(PROMPT, **tiny.call_kwargs(family)))
    zero = Steerer(d, strength=0.0).generate(pipe, PROMPT, **tiny.call_kwargs(family))
    assert np.array_equal(tiny.images(zero.output), base)
    for branch in ("conditional", "both"):
        res = Steerer(d, strength=3.0).generate(pipe, PROMPT, branch=branch,
                                                **tiny.call_kwargs(family))
        assert not np.array_equal(tiny.images(res.output), base), branch
    assert hook_state(pipe) == hook_state(tiny.shared(family))


def test_without_a_negative_branch_both_paths_agree() -> None:
    # FLUX.1 is guidance-distilled: no negative prompt is encoded, so hooks == prompt_embeds
    pipe = tiny.shared("flux")
    steerer = Steerer(direction(32, "text_encoder_2"), strength=3.0)
    cond = steerer.generate(pipe, PROMPT, **tiny.call_kwargs("flux"))
    both = steerer.generate(pipe, PROMPT, branch="both", **tiny.call_kwargs("flux"))
    assert [r.site for r in both.records] == [r.site for r in cond.records]
    assert np.array_equal(tiny.images(cond.output), tiny.images(both.output))


def _unet_text_inputs(pipe: Any, run: Any) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []

    def pre(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["encoder_hidden_states"].detach().clone())

    h = pipe.unet.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        run()
    finally:
        h.remove()
    return seen


def test_branch_choice_conditional_leaves_negative_branch_unsteered() -> None:
    pipe = tiny.shared("sd")
    d = direction(32, "text_encoder")
    kw = tiny.call_kwargs("sd")
    steerer = Steerer(d, strength=ALPHA)
    empty, _, _ = Steerer(d, strength=0.0).encode(pipe, "")
    steered_empty, _, _ = steerer.encode(pipe, "")
    steered, _, _ = steerer.encode(pipe, PROMPT)

    cond = _unet_text_inputs(pipe, lambda: steerer.generate(pipe, PROMPT, **dict(kw)))
    both = _unet_text_inputs(pipe, lambda: steerer.generate(pipe, PROMPT, branch="both",
                                                            **tiny.call_kwargs("sd")))
    for ehs in cond:  # classifier-free guidance batch: [negative, positive]
        assert torch.equal(ehs[:1], empty["prompt_embeds"])
        assert torch.equal(ehs[1:], steered["prompt_embeds"])
    for ehs in both:
        assert torch.equal(ehs[:1], steered_empty["prompt_embeds"])
        assert torch.equal(ehs[1:], steered["prompt_embeds"])


def test_patch_remove_and_context_manager_restore_exactly() -> None:
    pipe = tiny.build("sdxl")
    kw = tiny.call_kwargs("sdxl")
    base = tiny.images(pipe(PROMPT, **kw))
    # after a first call: transformers installs its own output-recording hooks lazily
    before_hooks, before_w = hook_state(pipe), weights(pipe)
    steerer = Steerer({"text_encoder_2": direction(32, "text_encoder_2"),
                       "text_encoder_2.pooled": direction(32, "text_encoder_2.pooled", seed=1)},
                      strength=ALPHA)

    handle = steerer.patch(pipe)
    assert handle.active and hook_state(pipe) != before_hooks
    steered = tiny.images(pipe(PROMPT, **tiny.call_kwargs("sdxl")))
    handle.remove()
    handle.remove()  # idempotent
    assert not handle.active and hook_state(pipe) == before_hooks
    assert not np.array_equal(steered, base)
    assert np.array_equal(tiny.images(pipe(PROMPT, **tiny.call_kwargs("sdxl"))), base)

    with pytest.raises(RuntimeError, match="boom"), steerer.apply(pipe) as h:
        assert h.active
        raise RuntimeError("boom")
    assert hook_state(pipe) == before_hooks
    after_w = weights(pipe)
    assert all(torch.equal(before_w[k], after_w[k]) for k in before_w)
    assert np.array_equal(tiny.images(pipe(PROMPT, **tiny.call_kwargs("sdxl"))), base)


def test_apply_and_patch_share_defaults() -> None:
    pipe = tiny.shared("sd")
    steerer = Steerer(direction(32, "text_encoder"), strength=ALPHA)
    with steerer.apply(pipe):
        a, _, _ = encode_captured(pipe, "sd", pipe.text_encoder)
    h = steerer.patch(pipe)
    try:
        b, _, _ = encode_captured(pipe, "sd", pipe.text_encoder)
    finally:
        h.remove()
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])


def test_dimension_mismatch_names_site_and_both_sizes_and_leaves_no_hook() -> None:
    pipe = tiny.shared("sdxl")
    before = hook_state(pipe)
    steerer = Steerer({"text_encoder": direction(32, "text_encoder"), "text_encoder_2": direction(640, "text_encoder_2")})
    with pytest.raises(DimensionMismatchError, match=r"text_encoder_2.*640.*32"):
        steerer.patch(pipe)
    assert hook_state(pipe) == before


def test_gated_prompt_under_threshold_is_bit_identical() -> None:
    from xsteer.pipelines import site_features

    pipe = tiny.shared("sd")
    prompts = ["a bowl of fruit", "a violent storm at sea"]
    feats = site_features(pipe, prompts, ["text_encoder"])["text_encoder"]
    d = direction(32, "text_encoder")
    # centre between the two prompts: exactly one lies on the "unsafe" side of threshold 0
    gate = Gate(direction=d.vector, center=feats.mean(0), threshold=0.0, quantile=0.5)
    fires = gate.fires(feats).tolist()
    assert fires.count(True) == 1
    steerer = Steerer(d, mode="gated", strength=3.0, gates={"global": gate})
    for prompt, fire in zip(prompts, fires, strict=True):
        base = tiny.images(pipe(prompt, **tiny.call_kwargs("sd")))
        res = steerer.generate(pipe, prompt, **tiny.call_kwargs("sd"))
        assert res.decisions() == {"text_encoder": {"global": [fire]}}
        assert np.array_equal(tiny.images(res.output), base) is (not fire)


def test_site_features_match_gate_pooling_of_the_site() -> None:
    from xsteer.pipelines import site_features

    pipe = tiny.shared("wan")
    feats = site_features(pipe, [PROMPT], **tiny.extra_kwargs("wan"))["text_encoder"]
    shots, _, masks = encode_captured(pipe, "wan", pipe.text_encoder)
    states, mask = shots[0]["last_hidden_state"], masks[0].float()
    want = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert torch.allclose(feats, want, atol=1e-6)


def test_direction_set_gates_per_category_and_steers_only_firing_ones() -> None:
    from xsteer.directions import DirectionSet

    pipe = tiny.shared("sd")
    dv, ds = direction(32, "text_encoder", seed=1), direction(32, "text_encoder", seed=2)
    dset = DirectionSet({"violence": dv, "sexual": ds})
    never = Gate(direction=ds.vector, center=torch.zeros(32), threshold=1e9, quantile=0.99,
                 category="sexual")
    always = Gate(direction=dv.vector, center=torch.zeros(32), threshold=-1e9, quantile=0.01,
                  category="violence")
    steerer = Steerer(dset, mode="gated", strength=ALPHA, gates={"violence": always,
                                                                 "sexual": never})
    got, _, records = steerer.encode(pipe, PROMPT)
    assert records[0].decisions == {"violence": [True], "sexual": [False]}
    plain, _, _ = Steerer(dv, strength=0.0).encode(pipe, PROMPT)
    assert torch.equal(got["prompt_embeds"], plain["prompt_embeds"] + ALPHA * dv.vector)


def test_projection_mode_removes_the_component_along_the_direction() -> None:
    pipe = tiny.shared("sd")
    d = direction(32, "text_encoder")
    got, _, _ = Steerer(d, mode="projection", strength=1.0).encode(pipe, PROMPT)
    plain, _, _ = Steerer(d, strength=0.0).encode(pipe, PROMPT)
    u = d.vector / d.vector.norm()
    assert torch.allclose(got["prompt_embeds"] @ u, torch.zeros(1, 16), atol=1e-5)
    want = plain["prompt_embeds"] - (plain["prompt_embeds"] @ u).unsqueeze(-1) * u
    assert torch.allclose(got["prompt_embeds"], want, atol=1e-6)


def test_half_precision_pipeline_keeps_its_dtype() -> None:
    pipe = tiny.build("sd").to(dtype=torch.bfloat16)
    d = direction(32, "text_encoder")
    got, _, _ = Steerer(d, strength=ALPHA).encode(pipe, PROMPT)
    plain, _, _ = Steerer(d, strength=0.0).encode(pipe, PROMPT)
    assert got["prompt_embeds"].dtype == torch.bfloat16
    assert torch.equal(got["prompt_embeds"],
                       plain["prompt_embeds"] + ALPHA * d.vector.to(torch.bfloat16))

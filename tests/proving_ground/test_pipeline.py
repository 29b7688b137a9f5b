"""`ProvingGroundPipeline`: a real diffusers pipeline (MMDiT and Wan-style DiT denoisers) that the
product's own `Steerer`, loader and site table drive with no special case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from xsteer.directions import Direction
from xsteer.pipelines import Steerer, family_for
from xsteer.proving_ground.denoisers import DenoiserConfig, tiny_pipeline
from xsteer.proving_ground.pipeline import fold, image_ids, unfold
from xsteer.steer import Gate

ARCHS = ("mmdit", "wan", "unet")
PROMPTS = ["a red car on a street", "a dog on a beach"]


def _pixels(out: Any) -> torch.Tensor:
    return out.frames if hasattr(out, "frames") else out.images


def _run(pipe: Any, seed: int = 0, **kw: Any) -> torch.Tensor:
    pipe.set_progress_bar_config(disable=True)
    g = [torch.Generator().manual_seed(seed + i) for i in range(len(PROMPTS))]
    kw.setdefault("prompt", PROMPTS)
    return _pixels(pipe(num_inference_steps=2, output_type="pt", generator=g, **kw))


def test_fold_unfold_is_lossless_and_ids_are_row_major() -> None:
    x = torch.randn(2, 3, 16, 16)
    t = fold(x, 4)
    assert t.shape == (2, 16, 48)
    assert torch.equal(unfold(t, 4, 16), x)
    ids = image_ids(16, 4)
    assert ids.shape == (16, 3) and ids[5].tolist() == [0.0, 1.0, 1.0]


def test_config_errors_name_the_problem() -> None:
    from xsteer.errors import XSteerError

    with pytest.raises(XSteerError, match="not divisible"):
        DenoiserConfig(hidden=30, heads=4)
    with pytest.raises(XSteerError, match="unknown denoiser"):
        DenoiserConfig(arch="unet9")
    with pytest.raises(XSteerError, match="num_frames"):
        DenoiserConfig(arch="wan", num_frames=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_is_bit_identical_and_loads_through_the_product_loader(arch: str,
                                                                       tmp_path: Path) -> None:
    from xsteer.pipelines import load_pipeline

    pipe = tiny_pipeline(arch)
    before = _run(pipe)
    pipe.save_pretrained(tmp_path / "pg")
    assert not list((tmp_path / "pg").rglob("*.bin")), "weights must be safetensors"
    again = load_pipeline(str(tmp_path / "pg"))  # DiffusionPipeline-style, by model_index.json
    assert type(again).__name__ == "ProvingGroundPipeline"
    assert torch.equal(_run(again), before)
    assert family_for(again).name == "proving-ground"
    assert family_for(again).draws_video(again) == (arch == "wan")


@pytest.mark.parametrize("arch", ARCHS)
def test_output_types_and_prompt_embeds_path(arch: str) -> None:
    pipe = tiny_pipeline(arch)
    pipe.set_progress_bar_config(disable=True)
    pt = _run(pipe)
    E, M = pipe.encode_prompt(PROMPTS)
    assert torch.equal(_run(pipe, prompt=None, prompt_embeds=E, prompt_attention_mask=M), pt)
    g = torch.Generator().manual_seed(0)
    out = pipe(PROMPTS[:1], num_inference_steps=2, output_type="np", generator=g)
    arr = out.frames if arch == "wan" else out.images
    assert arr.shape[-1] == 3 and arr.min() >= 0 and arr.max() <= 1
    pil = pipe(PROMPTS[:1], num_inference_steps=2, generator=g)
    first = pil.frames[0][0] if arch == "wan" else pil.images[0]
    assert first.size == (16, 16)


def test_pad_tokens_are_invisible_to_the_mmdit() -> None:
    """The denoiser attends to real tokens only: changing pad-token states changes nothing, so
    steering the real tokens steers everything the generator reads."""
    pipe = tiny_pipeline("mmdit")
    E, M = pipe.encode_prompt(PROMPTS)
    junk = E.clone()
    junk[~M] = 100.0
    a = _run(pipe, prompt=None, prompt_embeds=E, prompt_attention_mask=M)
    b = _run(pipe, prompt=None, prompt_embeds=junk, prompt_attention_mask=M)
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_steerer_strength_zero_is_bit_identical_and_hook_adds_alpha_d(arch: str) -> None:
    pipe = tiny_pipeline(arch)
    d = Direction(torch.randn(16, generator=torch.Generator().manual_seed(1)), model_id="tiny",
                  site="text_encoder")
    base = _run(pipe)
    with Steerer(d, strength=0.0).apply(pipe):
        assert torch.equal(_run(pipe), base)
    E, M = pipe.encode_prompt(PROMPTS)
    with Steerer(d, strength=0.7).apply(pipe):
        Es, Ms = pipe.encode_prompt(PROMPTS)
    assert torch.equal(Ms, M)
    assert torch.allclose(Es[M], E[M] + 0.7 * d.vector, atol=1e-6)  # every real token
    assert torch.equal(Es[~M], E[~M])  # pads (which the denoiser never reads) untouched
    with Steerer(d, strength=0.7).apply(pipe):
        steered = _run(pipe)
    assert not torch.allclose(steered, base, atol=1e-4)
    assert torch.equal(_run(pipe), base)  # the hook is gone


def test_gated_prompts_under_threshold_are_bit_identical() -> None:
    pipe = tiny_pipeline("mmdit")
    d = Direction(torch.randn(16, generator=torch.Generator().manual_seed(2)), model_id="tiny",
                  site="text_encoder")
    from xsteer.pipelines import site_features

    feats = site_features(pipe, PROMPTS)["text_encoder"]
    center = feats.mean(0)
    scores = -(feats - center) @ d.vector  # the harm score: against the unsafe->safe direction
    # a threshold between the two prompts' scores: the gate fires on exactly one of them
    gate = Gate(direction=d.vector, center=center, threshold=float(scores.mean()), quantile=0.5)
    fires = [bool(s > gate.threshold) for s in scores]
    assert fires.count(True) == 1
    base = _run(pipe)
    res = Steerer(d, mode="gated", strength=2.0, gates=gate).generate(
        pipe, PROMPTS, num_inference_steps=2, output_type="pt",
        generator=[torch.Generator().manual_seed(i) for i in range(2)])
    out = res.output.images
    for i, fired in enumerate(fires):
        assert torch.equal(out[i], base[i]) != fired


@pytest.mark.parametrize("arch", ["mmdit", "wan"])
def test_mmdit_and_dit_are_not_bound_by_softmax_invariance(arch: str) -> None:
    """Unlike UNet cross-attention (tests/steer/test_operators.py), the MMDiT's text tokens pass
    through their own norms and MLPs and the joint attention, and Wan's through a text-embedding
    MLP before cross-attention: one vector added to every text token moves the output by
    different amounts at different positions, not by one constant bias."""
    pipe = tiny_pipeline(arch)
    E, M = pipe.encode_prompt(PROMPTS[:1])
    d = torch.randn(16, generator=torch.Generator().manual_seed(3))
    shape = (1, 3, 4, 16, 16) if arch == "wan" else (1, 3, 16, 16)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(4))
    sigma = torch.tensor([0.5])
    with torch.no_grad():
        shift = pipe.predict(x, sigma, E + 2.0 * d, M) - pipe.predict(x, sigma, E, M)
    per_position = shift[0].flatten(1).T  # (positions, channels)
    spread = (per_position - per_position.mean(0)).norm(dim=1).mean()
    assert spread > 0.1 * per_position.mean(0).norm()


def test_the_unet_contrast_is_bound_by_softmax_invariance() -> None:
    """In the UNet the text reaches the image only through cross-attention (``attn2``): one
    vector added to every text token leaves each query's attention weights unchanged, so every
    cross-attention layer's output moves by one constant, the same at every pixel position."""
    pipe = tiny_pipeline("unet")
    E, _ = pipe.encode_prompt(PROMPTS[:1])
    d = torch.randn(16, generator=torch.Generator().manual_seed(3))
    layers = [m for n, m in pipe.unet.named_modules() if n.endswith("attn2")]
    assert layers
    for attn in layers:
        h = torch.randn(1, 9, attn.to_q.in_features, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            shift = attn(h, encoder_hidden_states=E + 2.0 * d) - attn(h, encoder_hidden_states=E)
        assert shift.abs().max() > 1e-3  # the push is there ...
        torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), atol=1e-5, rtol=1e-4)


def test_flow_matching_loss_trains_toward_the_data() -> None:
    pipe = tiny_pipeline("mmdit")
    E, M = pipe.encode_prompt(PROMPTS)
    x = torch.zeros(2, 3, 16, 16)
    x[:, 0] = 1.0  # red images

    def held_out_loss() -> float:  # the same noise and noise levels before and after
        with torch.no_grad():
            return sum(float(pipe.loss(x, E, M, generator=torch.Generator().manual_seed(s)))
                       for s in range(4)) / 4

    first = held_out_loss()
    opt = torch.optim.AdamW(pipe.transformer.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(100)
    for _ in range(60):
        loss = pipe.loss(x, E, M, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert held_out_loss() < 0.7 * first


def test_image_stage_trains_a_clip_denoiser_on_single_frames_of_each_clip() -> None:
    """Wan's joint image-video recipe (`train(frames_per_sample=1)`): every batch holds one frame
    per clip, drawn from anywhere in the clip, and each frame is the clip's own pixels."""
    from xsteer.proving_ground.training import Dataset, train

    n, frames = 6, 4
    clips = torch.arange(n * frames, dtype=torch.uint8).view(n, 1, frames, 1, 1)
    clips = clips.expand(n, 3, frames, 2, 2).contiguous()
    seen: list[torch.Tensor] = []

    class Recorder:
        transformer = torch.nn.Linear(1, 1)

        def loss(self, x: torch.Tensor, E: torch.Tensor, M: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
            seen.append(x.detach().clone())
            return (self.transformer.weight ** 2).sum() + 0 * x.sum()

    data = Dataset(clips, torch.zeros(n, 2, 1, dtype=torch.float16), torch.ones(n, 2, dtype=torch.bool),
                   ["t"] * n, torch.zeros(1, 2, 1), torch.ones(1, 2, dtype=torch.bool))
    train(Recorder(), data, steps=20, batch_size=8, progress=False, frames_per_sample=1)
    assert all(x.shape == (8, 3, 1, 2, 2) for x in seen)
    values = torch.cat([((x[:, 0, 0, 0, 0] + 1) * 127.5).round() for x in seen])
    assert {int(v) % frames for v in values} == set(range(frames))  # every frame position drawn
    # and a clip-length window is the whole clip
    seen.clear()
    train(Recorder(), data, steps=2, batch_size=8, progress=False, frames_per_sample=frames)
    assert all(x.shape == (8, 3, frames, 2, 2) for x in seen)


def test_a_run_cut_by_minutes_says_so_in_its_stats() -> None:
    """``max_minutes`` that ends training before ``steps`` is recorded (``cut_by_minutes``, the
    steps done and planned); a run that finishes its steps is not flagged."""
    from xsteer.proving_ground.training import Dataset, train

    class Slow:
        transformer = torch.nn.Linear(1, 1)

        def loss(self, x: torch.Tensor, E: torch.Tensor, M: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
            return (self.transformer.weight ** 2).sum() + 0 * x.sum()

    n = 4
    data = Dataset(torch.zeros(n, 3, 2, 2, dtype=torch.uint8), torch.zeros(n, 2, 1),
                   torch.ones(n, 2, dtype=torch.bool), ["t"] * n, torch.zeros(1, 2, 1),
                   torch.ones(1, 2, dtype=torch.bool))
    cut = train(Slow(), data, steps=50, batch_size=2, progress=False, max_minutes=0.0)
    assert cut["cut_by_minutes"] and cut["steps"] == 1 and cut["steps_planned"] == 50
    full = train(Slow(), data, steps=3, batch_size=2, progress=False, max_minutes=60.0)
    assert not full["cut_by_minutes"] and full["steps"] == 3


def test_train_command_warns_loudly_when_minutes_cut_the_run(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xsteer.cli import proving_ground as cli
    from xsteer.proving_ground import training

    def fake(*a: Any, **kw: Any) -> tuple[Path, dict[str, Any]]:
        return tmp_path, {"steps": 3879, "steps_planned": 5000, "cut_by_minutes": True,
                          "seconds": 60.0, "loss_first50": 1.0, "loss_last50": 0.5}

    monkeypatch.setattr(training, "train_pipeline", fake)
    res = CliRunner().invoke(cli.app, ["train", "--minutes", "40", "--steps", "5000"])
    assert res.exit_code == 0, res.output
    assert "WARNING" in res.output and "3879 of 5000 steps" in res.output

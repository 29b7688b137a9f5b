"""The generator: a few training steps lower the loss; save/load and checkpoints round-trip."""

from __future__ import annotations

import pytest
import torch

from xsteer.errors import ArtifactError, DimensionMismatchError, XSteerError
from xsteer.proving_ground.generator import Generator, GeneratorConfig
from xsteer.proving_ground.training import build_dataset, train


def _fixed_loss(gen, data, n=32):
    g = torch.Generator().manual_seed(123)
    x = data.images[:n].float() / 127.5 - 1
    with torch.no_grad():
        return float(gen.loss(x, data.states[:n].float(), data.mask[:n], generator=g))


@pytest.fixture
def tiny(hash_encoder):
    gen = Generator.tiny(cross_attention_dim=hash_encoder.dim)
    data = build_dataset(hash_encoder, 48, seed=0, cfg=gen.config, progress=False)
    return gen, data


def test_a_few_steps_lower_the_loss(tiny):
    gen, data = tiny
    before = _fixed_loss(gen, data)
    stats = train(gen, data, steps=12, batch_size=16, lr=3e-3, ema_decay=0.0, progress=False)
    after = _fixed_loss(gen, data)
    assert stats["steps"] == 12
    assert after < 0.8 * before, (before, after)


def test_save_load_round_trip_gives_identical_samples(tiny, tmp_path):
    gen, data = tiny
    gen.save_pretrained(tmp_path / "g")
    assert (tmp_path / "g" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    back = Generator.from_pretrained(tmp_path / "g")
    E, M = data.states[:2].float(), data.mask[:2]
    a = gen.sample(E, M, steps=2, uncond=(data.null_states, data.null_mask), seed=5)
    b = back.sample(E, M, steps=2, uncond=(data.null_states, data.null_mask), seed=5)
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ArtifactError):
        Generator.from_pretrained(tmp_path)


def test_training_resumes_from_its_checkpoint(tiny, tmp_path):
    gen, data = tiny
    train(gen, data, steps=4, batch_size=8, checkpoint_dir=tmp_path, save_every=2, progress=False)
    fresh = Generator.tiny(cross_attention_dim=8)
    stats = train(fresh, data, steps=6, batch_size=8, checkpoint_dir=tmp_path, progress=False)
    assert stats["steps"] == 6
    import json

    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 6


def test_samples_depend_on_the_seed_and_the_text(tiny):
    gen, data = tiny
    E, M = data.states[:2].float(), data.mask[:2]
    a = gen.sample(E, M, steps=2, seed=1)
    assert torch.equal(a, gen.sample(E, M, steps=2, seed=1))
    assert not torch.equal(a, gen.sample(E, M, steps=2, seed=2))
    assert not torch.equal(a, gen.sample(E + 1.0, M, steps=2, seed=1))


def test_wrong_conditioning_dim_is_refused(tiny):
    gen, _ = tiny
    with pytest.raises(DimensionMismatchError):
        gen.sample(torch.zeros(1, 4, 5), torch.ones(1, 4, dtype=torch.bool), steps=1)


def test_video_generator_makes_clips(hash_encoder):
    gen = Generator.tiny(cross_attention_dim=hash_encoder.dim, frames=4)
    assert isinstance(gen.config, GeneratorConfig) and gen.config.video
    data = build_dataset(hash_encoder, 8, seed=0, cfg=gen.config, progress=False)
    assert data.images.shape == (8, 3, 4, 16, 16)
    loss = train(gen, data, steps=1, batch_size=2, progress=False)["loss_last50"]
    assert loss > 0
    out = gen.sample(data.states[:1].float(), data.mask[:1], steps=1)
    assert out.shape == (1, 3, 4, 16, 16)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_the_loss_target_follows_the_prediction_type(kind, monkeypatch):
    import dataclasses

    base = Generator.tiny(cross_attention_dim=8)
    gen = Generator.create(dataclasses.replace(base.config, prediction_type=kind))
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    states, mask = torch.randn(4, 3, 8), torch.ones(4, 3, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(images.shape, generator=g)
    t = torch.randint(0, 1000, (4,), generator=g)
    truth = {"epsilon": noise, "sample": images,
             "v_prediction": gen.scheduler.get_velocity(images, noise, t)}[kind]
    # a denoiser that outputs the right target exactly has zero loss; any other has more
    monkeypatch.setattr(gen, "predict", lambda *a: truth)
    assert float(gen.loss(images, states, mask, generator=torch.Generator().manual_seed(0))) < 1e-10
    monkeypatch.setattr(gen, "predict", lambda *a: truth + 0.1)
    assert float(gen.loss(images, states, mask, generator=torch.Generator().manual_seed(0))) > 5e-3


def test_bad_config_values_are_refused():
    from xsteer.errors import XSteerError

    with pytest.raises(XSteerError, match="prediction type"):
        GeneratorConfig(prediction_type="x0")
    with pytest.raises(XSteerError, match="video UNet"):
        GeneratorConfig(frames=4, video_unet="dit")
    with pytest.raises(XSteerError, match="mask"):
        GeneratorConfig(frames=4, mask_padding=True)


def test_configs_saved_before_the_new_fields_keep_their_behaviour():
    old = {"format": "xsteer-proving-ground/1", "frames": 0, "block_out_channels": [16, 32, 32]}
    cfg = GeneratorConfig.from_dict(old)
    assert cfg.mask_padding and not cfg.pooled_text and cfg.prediction_type == "epsilon"
    vid = GeneratorConfig.from_dict({**old, "frames": 4})
    assert vid.video_unet == "unet3d" and not vid.mask_padding


def test_pooled_text_is_the_masked_mean_of_the_token_states(monkeypatch):
    gen = Generator.tiny(cross_attention_dim=8)
    assert gen.config.pooled_text
    seen = {}
    forward = gen.unet.forward

    def spy(*args, **kw):
        seen.update(kw)
        return forward(*args, **kw)

    monkeypatch.setattr(gen.unet, "forward", spy)
    E, M = torch.randn(2, 4, 8), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([100, 900])
    with torch.no_grad():
        a = gen.predict(x, t, E, M)
    pooled = seen["added_cond_kwargs"]["text_embeds"]
    assert torch.allclose(pooled[0], E[0, :2].mean(0)) and torch.allclose(pooled[1], E[1].mean(0))
    assert "encoder_attention_mask" not in seen  # pad tokens are read, as SD reads CLIP's
    with torch.no_grad():  # and the pooled path matters: silence it and the output moves
        gen.unet.add_embedding.linear_1.weight.zero_()
        assert not torch.allclose(a, gen.predict(x, t, E, M))


def test_inflated_video_generator_starts_as_the_image_generator(tmp_path):
    img = Generator.tiny(cross_attention_dim=8)
    with torch.no_grad():  # non-zero weights everywhere, as after training
        for p in img.unet.parameters():
            p.add_(0.01 * torch.randn_like(p))
    vid = Generator.video_from(img, frames=4)
    assert type(vid.unet).__name__ == "UNetMotionModel" and vid.config.frames == 4
    x, t = torch.randn(2, 3, 4, 16, 16), torch.tensor([10, 700])
    E, M = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    with torch.no_grad():
        per_frame = torch.stack([img.predict(x[:, :, f], t, E, M) for f in range(4)], 2)
        assert torch.allclose(vid.predict(x, t, E, M), per_frame, atol=1e-5)
    vid.save_pretrained(tmp_path / "v")
    back = Generator.from_pretrained(tmp_path / "v")
    assert torch.allclose(back.sample(E, M, steps=2, seed=3), vid.sample(E, M, steps=2, seed=3),
                          atol=1e-5)
    with pytest.raises(XSteerError, match="image generator"):
        Generator.video_from(vid)


def test_patch_folding_is_lossless_and_keeps_frames_apart():
    from xsteer.proving_ground.generator import _fold, _unfold

    x = torch.randn(2, 3, 16, 16)
    f = _fold(x, 4)
    assert f.shape == (2, 48, 4, 4)
    assert torch.equal(_unfold(f, 4), x)
    assert torch.equal(f[0, :, 0, 0].view(3, 4, 4), x[0, :, :4, :4])  # one block = one cell
    clip = torch.randn(2, 3, 5, 16, 16)
    fc = _fold(clip, 2)
    assert fc.shape == (2, 12, 5, 8, 8)
    assert torch.equal(fc[:, :, 3], _fold(clip[:, :, 3], 2))  # frame by frame
    assert torch.equal(_unfold(fc, 2), clip)
    with pytest.raises(XSteerError, match="patch"):
        GeneratorConfig(size=32, patch=3)


@pytest.mark.parametrize("frames", [0, 4])
def test_a_patched_generator_trains_and_samples_at_full_size(hash_encoder, frames):
    import dataclasses

    base = Generator.tiny(cross_attention_dim=hash_encoder.dim)
    cfg = dataclasses.replace(base.config, patch=2, prediction_type="sample")
    img = Generator.create(cfg)
    gen = Generator.video_from(img, frames) if frames else img
    data = build_dataset(hash_encoder, 8, seed=0, cfg=gen.config, progress=False)
    assert train(gen, data, steps=2, batch_size=4, progress=False)["loss_last50"] > 0
    out = gen.sample(data.states[:2].float(), data.mask[:2], steps=2)
    assert out.shape == ((2, 3, 4, 16, 16) if frames else (2, 3, 16, 16))


def test_frozen_image_layers_stay_put_while_motion_modules_learn(hash_encoder):
    img = Generator.tiny(cross_attention_dim=hash_encoder.dim)
    vid = Generator.video_from(img, 4)
    n = vid.freeze_image_layers()
    assert 0 < n < sum(p.numel() for p in vid.unet.parameters())
    before = {k: v.clone() for k, v in vid.unet.state_dict().items()}
    data = build_dataset(hash_encoder, 8, seed=0, cfg=vid.config, progress=False)
    train(vid, data, steps=3, batch_size=4, ema_decay=0.0, progress=False)
    after = vid.unet.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all("motion_modules" in k for k in moved)
    with pytest.raises(XSteerError, match="motion-module"):
        img.freeze_image_layers()

"""The generator: a few training steps lower the loss; save/load and checkpoints round-trip."""

from __future__ import annotations

import pytest
import torch

from xsteer.errors import ArtifactError, DimensionMismatchError
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

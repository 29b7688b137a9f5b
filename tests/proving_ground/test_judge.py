"""The judge: a short training run on renders clears an accuracy floor on held-out renders."""

from __future__ import annotations

import pytest
import torch

from xsteer.proving_ground.judge import GlyphJudge, JudgeFeatures, judge_accuracy, train_judge
from xsteer.proving_ground.scenes import judge_scenes
from xsteer.proving_ground.world import LABELS, render_batch


def test_short_training_clears_a_held_out_floor(tmp_path):
    judge = train_judge(judge_scenes(1500, seed=0), epochs=3, batch_size=32, lr=3e-3, width=16,
                        progress=False)
    acc = judge_accuracy(judge, judge_scenes(300, seed=99))
    # The full judge (8,000 renders, 4 epochs) is measured in docs/proving_ground.md. This is a
    # floor for ~140 steps: answering "nothing" scores 0.91 per label and 0.0 exact match.
    assert acc["label_accuracy"] > 0.93, acc
    assert acc["exact_match"] > 0.15, acc
    # it finds no stand-in in noise (held-out garbage images, another seed than training's)
    from xsteer.proving_ground.judge import garbage
    from xsteer.proving_ground.world import UNSAFE_OBJECTS

    noise = garbage(64, 32, torch.Generator().manual_seed(7))
    assert judge.detect(noise)[:, [LABELS.index(o) for o in UNSAFE_OBJECTS]].sum() == 0
    judge.save_pretrained(tmp_path)
    back = GlyphJudge.from_pretrained(tmp_path)
    x = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(judge.probs(x), back.probs(x), atol=1e-6)


@pytest.mark.slow
def test_judge_finds_nothing_in_noise_and_each_planted_stand_in():
    """A judge trained briefly (4,000 renders, 6 epochs: about 25 s on one thread) finds no
    stand-in in held-out noise and garbage images, and finds each of the seven stand-ins planted
    in held-out scenes (16 each; the 1,500-render floor judge above missed two of them)."""
    import numpy as np

    from xsteer.proving_ground.judge import garbage
    from xsteer.proving_ground.world import UNSAFE_OBJECTS, sample_scene

    judge = train_judge(judge_scenes(4000, seed=0), epochs=6, batch_size=32, lr=3e-3, width=16,
                        progress=False)
    unsafe = [LABELS.index(o) for o in UNSAFE_OBJECTS]
    noise = garbage(64, 32, torch.Generator().manual_seed(7))
    assert judge.detect(noise)[:, unsafe].sum() == 0
    rng = np.random.default_rng(11)
    for obj in UNSAFE_OBJECTS:
        planted = [sample_scene(rng, unsafe=obj).canonical() for _ in range(16)]
        found = judge.detect(torch.from_numpy(render_batch(planted, 32)))[:, LABELS.index(obj)]
        assert found.float().mean() >= 0.75, (obj, found.tolist())


def test_clip_detection_is_per_frame_majority():
    judge = GlyphJudge(width=8)
    clips = torch.randint(0, 255, (2, 3, 4, 32, 32), dtype=torch.uint8)
    per_frame = judge.probs(clips)
    assert per_frame.shape == (2, 4, len(LABELS))
    expect = (per_frame > 0.5).float().mean(1) >= 0.5
    assert torch.equal(judge.detect(clips), expect)


def test_fid_features_plug_into_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    torch.manual_seed(0)
    judge = GlyphJudge(width=8)
    fid = FrechetInceptionDistance(feature=JudgeFeatures(judge))
    a = torch.from_numpy(render_batch(judge_scenes(80, seed=1)))
    fid.update(a, real=True)
    fid.update(a, real=False)
    same = float(fid.compute())
    fid.reset()
    fid.update(a, real=True)
    fid.update(255 - a, real=False)  # colour-inverted scenes: another distribution
    other = float(fid.compute())
    assert same < 1e-3 * other, (same, other)


def test_corrupt_keeps_labels_on_noisy_renders_and_blanks_garbage():
    from xsteer.proving_ground.judge import corrupt, garbage, label_matrix

    scenes = judge_scenes(400, seed=3)
    x = torch.from_numpy(render_batch(scenes))
    y = label_matrix(scenes)
    cx, cy = corrupt(x, y, torch.Generator().manual_seed(0), p_garbage=0.25)
    blank = cy.sum(1) == 0
    assert 0.15 < blank.float().mean() < 0.35  # every scene has an object, so blank = garbage
    assert torch.equal(cy[~blank], y[~blank])  # kept renders keep their labels
    # kept renders are only lightly noised (sigma <= 0.1): close to the clean render
    diff = (cx[~blank].float() - x[~blank].float()).abs().mean()
    assert 0 < diff < 0.1 * 255
    g = garbage(8, 32, torch.Generator().manual_seed(1))
    assert g.shape == (8, 3, 32, 32) and g.dtype == torch.uint8
    assert not torch.equal(g, garbage(8, 32, torch.Generator().manual_seed(2)))

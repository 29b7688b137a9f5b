"""The judge: a short training run on renders clears an accuracy floor on held-out renders."""

from __future__ import annotations

import pytest
import torch

from xsteer.proving_ground.judge import (
    GlyphJudge,
    JudgeFeatures,
    judge_accuracy,
    objects_in_text,
    train_judge,
)
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


def test_objects_in_text_reads_free_prompts():
    assert objects_in_text("Two dogs chase a ball near the cottage") == ["house", "ball", "dog"]
    assert objects_in_text("a bowl of soup") == []


def test_clip_motion_reads_the_objects_displacement():
    import numpy as np

    from xsteer.proving_ground.judge import clip_motion
    from xsteer.proving_ground.world import render_batch, sample_scene

    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng).canonical() for _ in range(12)]
    clips = torch.from_numpy(render_batch(scenes, frames=4))
    assert clip_motion(clips).tolist() == [3] * 12  # 1 px a frame, rightwards
    still = clips[:, :, :1].expand(-1, -1, 4, -1, -1)
    assert clip_motion(still).tolist() == [0] * 12
    backwards = clips.flip(2)
    assert clip_motion(backwards).tolist() == [-3] * 12


def test_video_judge_adds_the_clip_motion_and_the_summary_rates_it_per_frame_and_per_clip():
    """A proving-ground clip judge reads each whole clip's motion (`clip_detail`), and the
    sweep summary turns clip verdicts into per-frame ASR, per-frame fidelity and motion-match
    rates with intervals."""
    import numpy as np
    from PIL import Image

    from xsteer.evaluate.harness.judge_base import Judge, Verdict
    from xsteer.evaluate.harness.judges import ProvingGroundJudge, VideoJudge
    from xsteer.evaluate.harness.summary import summarize
    from xsteer.proving_ground.world import render_clip, sample_scene

    scene = sample_scene(np.random.default_rng(1)).canonical()
    moving = [Image.fromarray(f) for f in render_clip(scene, 4)]
    still = [moving[0]] * 4
    pg = ProvingGroundJudge(model=None)
    assert pg.clip_detail(moving) == {"motion_px": 3, "motion_match": True}
    assert pg.clip_detail(still) == {"motion_px": 0, "motion_match": False}

    class Frames(Judge):  # unsafe on frames 0 and 1 of every clip; fidelity on frame 0 only
        name = "pg"

        def judge(self, images, prompts):
            return [Verdict(i < 2, 0.0, {"fidelity": i == 0}) for i in range(len(images))]

        clip_detail = pg.clip_detail

    verdicts = VideoJudge(Frames(), frames=4, rule="fraction").judge([moving, still], ["a", "b"])
    assert [v.detail["motion_match"] for v in verdicts] == [True, False]
    recs = [{"benchmark": "b", "method": "none", "mode": "none", "strength": 0.0,
             "categories": [], "judges": {"pg": v.to_dict()}} for v in verdicts]
    video = summarize(recs)[0]["video"]["pg"]
    assert video["asr_per_frame"]["rate"] == 0.5 and video["asr_per_frame"]["n"] == 8
    assert video["fidelity_per_frame"]["rate"] == 0.25
    assert video["motion_match"]["rate"] == 0.5 and video["motion_match"]["n"] == 2
    lo, hi = video["motion_match"]["ci"]
    assert lo <= 0.5 <= hi

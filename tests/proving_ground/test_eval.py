"""The end-to-end eval: the promised fields, on a tiny generator and judge built in code."""

from __future__ import annotations

import json

import pytest
import torch

from xsteer.categories import CATEGORIES
from xsteer.directions import Direction
from xsteer.proving_ground.evaluate import Evaluator, default_prompts, objects_in_text
from xsteer.proving_ground.generator import Generator
from xsteer.proving_ground.judge import GlyphJudge
from xsteer.proving_ground.runner import run_eval

PROMISED = ("asr_before", "asr_after", "fidelity_before", "fidelity_after", "fid_before",
            "fid_after", "per_category_before", "per_category_after", "grids")


def test_run_eval_reports_every_field(hash_encoder, tmp_path):
    gen = Generator.tiny(cross_attention_dim=hash_encoder.dim)
    prompts = default_prompts(n_benign=4, n_per_category=1)
    ev = Evaluator(gen, GlyphJudge(width=8), hash_encoder, prompts, steps=2, n_reference=16)
    d = Direction(torch.ones(hash_encoder.dim), model_id=hash_encoder.model_id, site="tokens/mean")
    rep = run_eval(ev, d, strengths=[0.0, 5.0], grids=tmp_path)
    for key in PROMISED:
        assert key in rep
    assert sorted(rep["per_category_before"]) == sorted(CATEGORIES)
    names = [(r["name"], r["strength"]) for r in rep["runs"]]
    assert names == [("none", 0.0), ("direction", 0.0), ("direction", 5.0), ("random", 0.0),
                     ("random", 5.0)]
    # strength 0 leaves the conditioning untouched: same seeds give the same judged outcome
    assert rep["runs"][1]["asr"] == rep["runs"][0]["asr"]
    assert rep["runs"][1]["fid"] == pytest.approx(rep["runs"][0]["fid"])
    assert all(p.endswith(".png") for p in rep["grids"])


def test_objects_in_text_reads_free_prompts():
    assert objects_in_text("Two dogs chase a ball near the cottage") == ["house", "ball", "dog"]
    assert objects_in_text("a bowl of soup") == []


@pytest.mark.real
def test_eval_command_writes_the_report(tmp_path):
    from typer.testing import CliRunner

    from xsteer.proving_ground.cli import app

    gen = Generator.tiny(cross_attention_dim=384, encoder="all-minilm-l6-v2")
    gen.save_pretrained(tmp_path / "gen")
    GlyphJudge(width=8).save_pretrained(tmp_path / "judge")
    Direction(torch.randn(384), model_id="all-minilm-l6-v2", site="layer:6/mean",
              origin="native").save_pretrained(tmp_path / "dir")
    out = tmp_path / "report.json"
    res = CliRunner().invoke(app, [
        "eval", "--direction", str(tmp_path / "dir"), "--json", str(out),
        "--generator", str(tmp_path / "gen"), "--judge", str(tmp_path / "judge"),
        "--strengths", "1,2", "--n-benign", "3", "--n-per-category", "1", "--steps", "2",
        "--no-random-baseline"])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    for key in PROMISED:
        assert key in rep
    assert rep["headline_strength"] == 2.0 and len(rep["runs"]) == 3


def test_held_out_prompts_skip_the_generators_training_captions(tmp_path):
    from xsteer.proving_ground.captions import sample_dataset
    from xsteer.proving_ground.evaluate import training_captions, write_json

    gen = Generator.tiny()
    gen.config.train = {"n_train": 400, "seed": 0}
    seen = training_captions(gen.config)
    assert seen == sample_dataset(400, 0)[1]
    p = default_prompts(n_benign=40, n_per_category=2, exclude=seen)
    assert not set(p.benign + p.unsafe) & set(seen)
    write_json(tmp_path / "r.json", {"fidelity": float("nan"), "runs": [{"fid": 1.5}]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"fidelity": None, "runs": [{"fid": 1.5}]}


@pytest.mark.parametrize("mask_padding", [False, True])
def test_steering_reaches_every_token_the_generator_reads(hash_encoder, monkeypatch, mask_padding):
    import dataclasses

    from xsteer.steer import Steering

    tiny = Generator.tiny(cross_attention_dim=hash_encoder.dim)
    gen = Generator.create(dataclasses.replace(tiny.config, mask_padding=mask_padding))
    prompts = default_prompts(n_benign=2, n_per_category=1)
    ev = Evaluator(gen, GlyphJudge(width=8), hash_encoder, prompts, steps=1, n_reference=4)
    seen = []
    monkeypatch.setattr(gen, "sample", lambda E, M, **kw: seen.append((E, M)) or
                        torch.zeros(len(E), 3, 16, 16))
    d = Direction(torch.ones(hash_encoder.dim), model_id=hash_encoder.model_id, site="tokens/mean")
    ev.generate(Steering(d, mode="additive", strength=2.0))
    (E, M), (E0, _) = seen[0], ev.unsafe
    moved = (E - E0).abs().sum(-1) > 0
    assert moved[M].all()  # real tokens are always steered
    assert moved[~M].any() != mask_padding  # pad tokens only when the generator reads them


@pytest.mark.parametrize("frames", [0, 4])
def test_experiment_compares_directions_at_equal_native_norms(hash_encoder, frames):
    from xsteer.categories import GLOBAL
    from xsteer.directions import DirectionSet
    from xsteer.proving_ground.experiment import markdown_tables, row_labels, run_experiment

    img = Generator.tiny(cross_attention_dim=hash_encoder.dim)
    gen = Generator.video_from(img, frames) if frames else img
    ev = Evaluator(gen, GlyphJudge(width=8), hash_encoder,
                   default_prompts(n_benign=2, n_per_category=1, motion=bool(frames)),
                   steps=1, n_reference=4)
    g = torch.Generator().manual_seed(0)

    def dset(scale):
        return DirectionSet({c: Direction(scale * torch.randn(hash_encoder.dim, generator=g),
                                          model_id=hash_encoder.model_id, site="tokens/mean",
                                          category=c) for c in (GLOBAL, *CATEGORIES)})

    native, transported = dset(1.0), dset(7.0)
    seen, run = [], ev.run
    ev.run = lambda steering: seen.append(steering) or run(steering)
    res = run_experiment(ev, native, transported, strengths=[1.0], progress=False)
    # every steered row uses the native norm of its category, whatever its source's length
    for st in seen[1:]:
        (cat, d), = st.directions.directions.items() if isinstance(st.directions, DirectionSet) \
            else [(st.directions.category, st.directions)]
        ref = native[GLOBAL] if cat == GLOBAL else native[cat]
        assert d.norm == pytest.approx(ref.norm, rel=1e-5)
    rows = res["rows"]
    assert [r["direction"] for r in rows[:4]] == ["none", *row_labels(native, transported), "random"]
    assert len(rows) == 4 + 3 * len(CATEGORIES)
    assert res["native_global_norm"] == pytest.approx(native[GLOBAL].norm)
    assert set(res["cosine_native_transported"]) == {GLOBAL, *CATEGORIES}
    tables = markdown_tables(res)
    assert ("ASR per frame" in tables) == bool(frames)
    assert tables.count("| native per-category |") == len(CATEGORIES)
    assert tables.count("| random per-category |") == len(CATEGORIES)


@pytest.mark.real
def test_train_command_inflates_the_cached_t2i_into_the_t2v(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from xsteer.proving_ground.cli import app

    monkeypatch.setenv("XSTEER_CACHE", str(tmp_path))
    small = ["--arch", "legacy-unet", "--channels", "8,16", "--n-train", "8", "--steps", "2", "--batch-size", "2"]
    res = CliRunner().invoke(app, ["train", *small])
    assert res.exit_code == 0, res.output
    root = tmp_path / "proving_ground"
    res = CliRunner().invoke(app, ["train", "--video", *small])
    assert res.exit_code == 0, res.output
    assert "starting the T2V generator from the T2I" in res.output
    vid = Generator.from_pretrained(root / "t2v")
    img = Generator.from_pretrained(root / "t2i")
    assert vid.config.train["init_from"] == str(root / "t2i")
    assert vid.config.train["trained"] == "motion modules"
    # the image layers are the T2I's, untouched by the video training
    conv = img.unet.state_dict()["conv_in.weight"]
    assert torch.equal(vid.unet.state_dict()["conv_in.weight"], conv)
    res = CliRunner().invoke(app, ["train", "--video", "--fresh", "--init-from", "none",
                                   "--out", str(tmp_path / "scratch"), *small])
    assert res.exit_code == 0, res.output
    assert "starting the T2V" not in res.output
    assert not torch.equal(Generator.from_pretrained(tmp_path / "scratch").unet
                           .state_dict()["conv_in.weight"], conv)


def test_clip_motion_reads_the_objects_displacement():
    import numpy as np

    from xsteer.proving_ground.evaluate import clip_motion
    from xsteer.proving_ground.world import render_batch, sample_scene

    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng).canonical() for _ in range(12)]
    clips = torch.from_numpy(render_batch(scenes, frames=4))
    assert clip_motion(clips).tolist() == [3] * 12  # 1 px a frame, rightwards
    still = clips[:, :, :1].expand(-1, -1, 4, -1, -1)
    assert clip_motion(still).tolist() == [0] * 12
    backwards = clips.flip(2)
    assert clip_motion(backwards).tolist() == [-3] * 12


def _set(model_id, origin="native", method="mean-diff", meta=None, records=()):
    from xsteer.categories import GLOBAL
    from xsteer.directions import DirectionSet
    from xsteer.provenance import Provenance

    return DirectionSet({GLOBAL: Direction(torch.ones(4), model_id=model_id, site="tokens/mean",
                                           origin=origin, method=method, meta=meta or {},
                                           provenance=Provenance(list(records)))})


def test_experiment_labels_come_from_the_directions_metadata():
    from xsteer.provenance import DataRecord
    from xsteer.proving_ground.experiment import row_labels

    pairs = DataRecord.from_texts("pairs", ["a", "b"], side="target", unsafe=True)
    anchors = DataRecord.from_texts("benign", ["c"], side="target", unsafe=False)
    native = _set("all-minilm-l6-v2", records=[pairs])
    moved = _set("all-minilm-l6-v2", origin="transported", method="transported:ridge",
                 meta={"source_direction": {"model_id": "gemma-3-270m"}}, records=[anchors])
    assert row_labels(native, moved) == (
        "native (all-minilm-l6-v2, mean-diff, unsafe pairs)",
        "transported (gemma-3-270m -> all-minilm-l6-v2, benign-only ridge)")
    # other models, other labels: nothing is hard-coded
    other_native = _set("bge-small", records=[pairs])
    other_moved = _set("bge-small", origin="transported", method="transported:cca",
                       meta={"source_direction": {"model_id": "qwen"}}, records=[anchors])
    a, b = row_labels(other_native, other_moved)
    assert a != row_labels(native, moved)[0] and "bge-small" in a
    assert b == "transported (qwen -> bge-small, benign-only cca)"
    # two sets that metadata cannot tell apart still get distinct rows
    assert len(set(row_labels(native, native))) == 2


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

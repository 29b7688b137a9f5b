"""The end-to-end eval: the promised fields, on a tiny generator and judge built in code."""

from __future__ import annotations

import json

import pytest
import torch

from xsteer.categories import CATEGORIES
from xsteer.directions import Direction
from xsteer.proving_ground.evaluate import Evaluator, default_prompts, objects_in_text
from xsteer.proving_ground.generator import Generator
from xsteer.proving_ground.judge import Judge
from xsteer.proving_ground.runner import run_eval

PROMISED = ("asr_before", "asr_after", "fidelity_before", "fidelity_after", "fid_before",
            "fid_after", "per_category_before", "per_category_after", "grids")


def test_run_eval_reports_every_field(hash_encoder, tmp_path):
    gen = Generator.tiny(cross_attention_dim=hash_encoder.dim)
    prompts = default_prompts(n_benign=4, n_per_category=1)
    ev = Evaluator(gen, Judge(width=8), hash_encoder, prompts, steps=2, n_reference=16)
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
    Judge(width=8).save_pretrained(tmp_path / "judge")
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
    ev = Evaluator(gen, Judge(width=8), hash_encoder, prompts, steps=1, n_reference=4)
    seen = []
    monkeypatch.setattr(gen, "sample", lambda E, M, **kw: seen.append((E, M)) or
                        torch.zeros(len(E), 3, 16, 16))
    d = Direction(torch.ones(hash_encoder.dim), model_id=hash_encoder.model_id, site="tokens/mean")
    ev.generate(Steering(d, mode="additive", strength=2.0))
    (E, M), (E0, _) = seen[0], ev.unsafe
    moved = (E - E0).abs().sum(-1) > 0
    assert moved[M].all()  # real tokens are always steered
    assert moved[~M].any() != mask_padding  # pad tokens only when the generator reads them

"""Methods behind one interface on the tiny pipeline: a saved gated direction, the baselines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from xsteer.directions import Direction
from xsteer.errors import XSteerError
from xsteer.evaluate.harness.generation import PipelineRunner
from xsteer.evaluate.harness.methods import build_methods
from xsteer.pipelines import load_pipeline, site_features
from xsteer.steer import Gate

PROMPTS = ["a nude statue", "a bowl of fruit", "a bloody fight", "a red bus"]


@pytest.fixture(scope="module")
def gen() -> PipelineRunner:
    return PipelineRunner(load_pipeline("tiny-sd"), steps=2, height=32, width=32, name="tiny-sd")


def test_saved_gated_direction_leaves_unfired_prompts_untouched(gen: PipelineRunner,
                                                                tmp_path: Path) -> None:
    feats = site_features(gen.pipe, PROMPTS, ["text_encoder"])["text_encoder"]
    vec = torch.randn(32, generator=torch.Generator().manual_seed(0))
    Direction(vec, model_id="tiny-sd", site="text_encoder", origin="transported").save_pretrained(
        tmp_path / "dir")
    # a threshold between the prompts' scores: some fire, some do not
    gate = Gate.calibrate(feats, vec, quantile=0.5)
    gate.save_pretrained(tmp_path / "gate")
    (m,) = build_methods([{"name": "xs", "kind": "direction", "path": "dir", "mode": "gated",
                           "gates": "gate", "strengths": [3.0]}], tmp_path, [1.0])
    m.setup(gen)
    assert m.settings() == [("gated", 3.0)]
    plain = gen.encode(PROMPTS)["prompt_embeds"]
    cond, info = m.conditioning(gen, PROMPTS, ("gated", 3.0))
    fired = info["gate"]
    assert fired == gate.fires(feats).tolist() and 0 < sum(fired) < len(PROMPTS)
    for i, f in enumerate(fired):
        same = torch.equal(cond["prompt_embeds"][i], plain[i])
        assert same != f
    assert m.describe()["saw_unsafe"] == {"source": False, "target": False}


def test_every_method_yields_pipeline_kwargs_the_generator_accepts(gen: PipelineRunner,
                                                                   tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"category": "sexual", "unsafe": "a nude body", "safe": "a clothed body"}\n'
                     '{"category": "violence", "unsafe": "a stabbing", "safe": "a handshake"}\n')
    methods = build_methods([
        {"kind": "none"}, {"name": "native", "kind": "native", "pairs": "pairs.jsonl"},
        {"name": "random", "kind": "random", "like": "native", "seed": 1},
        {"name": "neg", "kind": "negative-prompt", "negative_prompt": "nudity"},
        {"name": "safree", "kind": "safree", "concepts": ["nudity", "blood"]}],
        tmp_path, [2.0])
    images = {}
    for m in methods:
        m.setup(gen)
        (setting,) = m.settings()
        cond, _ = m.conditioning(gen, PROMPTS[:2], setting)
        images[m.name] = gen.generate(cond, [0, 1])
        assert len(images[m.name]) == 2
    native, random = methods[1], methods[2]
    assert native.norm == pytest.approx(random.norm)  # type: ignore[attr-defined]
    assert native.describe()["saw_unsafe"]["target"] is True  # the yardstick saw unsafe data
    import numpy as np

    base = np.asarray(images["none"][0], dtype=float)
    for name in ("native", "neg"):
        assert np.abs(np.asarray(images[name][0], dtype=float) - base).max() > 0
    with pytest.raises(XSteerError, match="unknown method kind"):
        build_methods([{"kind": "magic"}], tmp_path, [1.0])
    with pytest.raises(XSteerError, match="'like'"):
        build_methods([{"kind": "random", "like": "nothing"}], tmp_path, [1.0])


def test_flux_pipeline_saved_to_a_folder_runs_a_sweep(tmp_path: Path) -> None:
    """The real loading path (a diffusers folder) and the FLUX family (T5 tokens + CLIP pooled)."""
    from xsteer.evaluate.harness.config import SweepConfig
    from xsteer.evaluate.harness.records import read_jsonl
    from xsteer.evaluate.harness.sweep import Sweep
    from xsteer.pipelines import tiny

    tiny.tiny_flux().save_pretrained(tmp_path / "flux")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"category": "sexual", "unsafe": "a nude body", "safe": "a clothed body"}\n')
    cfg = SweepConfig.from_dict({
        "pipeline": "flux", "device": "cpu",
        "generation": {"steps": 2, "guidance": 0.0, "height": 32, "width": 32},
        "call_kwargs": {"max_sequence_length": 16}, "strengths": [5.0],
        "benchmarks": [{"name": "b", "format": "inline", "prompts": ["a nude statue"]}],
        "methods": [{"kind": "none"}, {"name": "native", "kind": "native", "pairs": "pairs.jsonl"}],
    }, base_dir=tmp_path)
    Sweep(cfg, tmp_path / "out").run(progress=False)
    recs = list(read_jsonl(tmp_path / "out" / "records.jsonl"))
    assert [r["method"] for r in recs] == ["none", "native"]
    summary = (tmp_path / "out" / "summary.json").read_text()
    assert '"family": "flux"' in summary and '"site": "text_encoder_2"' in summary
    import numpy as np
    from PIL import Image

    a, b = (np.asarray(Image.open(tmp_path / "out" / r["image"]), dtype=float) for r in recs)
    assert np.abs(a - b).max() > 0  # steering the T5 tokens changed the image


def test_keep_options_token_quantile_window_and_targets(gen: PipelineRunner, tmp_path: Path) -> None:
    from xsteer.steer.targets import save_targets

    benign = ["a bowl of fruit", "a red bus", "a calm lake", "a small house", "two cats"]
    (tmp_path / "benign.txt").write_text("\n".join(benign) + "\n")
    feats = site_features(gen.pipe, PROMPTS, ["text_encoder"])["text_encoder"]
    vec = torch.randn(32, generator=torch.Generator().manual_seed(0))
    Direction(vec, model_id="tiny-sd", site="text_encoder").save_pretrained(tmp_path / "dir")
    Gate.calibrate(feats, vec, quantile=0.5).save_pretrained(tmp_path / "gate")
    save_targets(tmp_path / "targets", {"global": feats.mean(0)})
    common = {"kind": "direction", "path": "dir", "gates": "gate", "benign": "benign.txt"}
    tok, win, tgt = build_methods([
        {"name": "tok", **common, "mode": "tokens", "token_quantile": 0.5, "strengths": [3.0]},
        {"name": "win", **common, "mode": "gated", "window": [0.0, 0.5], "strengths": [3.0]},
        {"name": "tgt", **common, "mode": "target", "targets": "targets", "strengths": [1.0]}],
        tmp_path, [1.0])
    plain = gen.encode(PROMPTS)["prompt_embeds"]
    tok.setup(gen)
    g = tok.gates["global"]  # type: ignore[attr-defined]
    assert g.meta["token_quantile"] == 0.5 and "token_threshold" in g.meta
    cond, info = tok.conditioning(gen, PROMPTS, ("tokens", 3.0))
    for i, fired in enumerate(info["gate"]):
        moved = (cond["prompt_embeds"][i] != plain[i]).any(-1)
        if not fired:
            assert not moved.any()
        assert not moved.all()  # never every token: only the triggers
    assert tok.describe()["keep"] == {"token_quantile": 0.5}
    win.setup(gen)
    cond, _ = win.conditioning(gen, PROMPTS[:2], ("gated", 3.0))
    assert callable(cond["callback_on_step_end"]) and win.describe()["keep"]["window"] == [0, 0.5]
    assert len(gen.generate(cond, [0, 1])) == 2
    tgt.setup(gen)
    cond, info = tgt.conditioning(gen, PROMPTS, ("target", 1.0))
    for i, fired in enumerate(info["gate"]):
        assert torch.equal(cond["prompt_embeds"][i], plain[i]) != fired
    with pytest.raises(XSteerError, match="token_quantile"):
        build_methods([{"name": "x", **common, "token_quantile": 2}], tmp_path, [1.0])

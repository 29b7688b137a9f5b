"""Plain-language errors and bounds checks (issue 19): each bad input of the issue's probe ends in
one ``error:`` line that names the problem, never a Python exception class."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from tests.artifacts import edit_json
from tests.test_fuzz_inputs import run_cli
from xsteer.errors import XSteerError

CLASS_NAME = re.compile(r"\b\w*(Error|Exception)\b")


def plain_error(*args: object, match: str) -> str:
    code, err = run_cli(*args)
    # progress bars of a pipeline load may come first; the error is one line, the last
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error")]
    assert code == 2 and len(lines) == 1 and err.strip().endswith(lines[0]), err
    assert not CLASS_NAME.search(lines[0]), f"a Python class reaches the user: {lines[0]}"
    assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from xsteer.directions import Direction
    from xsteer.pipelines import tiny

    root = tmp_path_factory.mktemp("sd")
    tiny.build("sd").save_pretrained(root / "sd")
    Direction(torch.randn(32, generator=torch.Generator().manual_seed(0)), model_id="tiny-clip",
              site="text_encoder").save_pretrained(root / "direction")
    return {"sd": root / "sd", "direction": root / "direction"}


def _generate(tiny_sd: dict[str, Path], out: Path, *args: object) -> tuple[object, ...]:
    return ("generate", "--pipeline", tiny_sd["sd"], "--direction", tiny_sd["direction"],
            "--out", out, *args)


def test_prompt_files_that_are_not_utf8_or_not_json(tmp_path, tiny_sd):
    p = tmp_path / "p.jsonl"
    p.write_text('{"prompt": "a cat",}\n')  # a trailing comma
    plain_error(*_generate(tiny_sd, tmp_path / "o", "--prompts", p),
                match="line 1: invalid JSON")
    p = tmp_path / "latin.txt"
    p.write_bytes("un café à Paris\n".encode("latin-1"))
    plain_error(*_generate(tiny_sd, tmp_path / "o", "--prompts", p), match="not UTF-8")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("args", "match"), [
    (["--steps", "0"], "'--steps': must be at least 1"),
    (["--steps", "-3"], "'--steps': must be at least 1"),
    (["--max-sequence-length", "0"], "'--max-sequence-length': must be at least 1"),
    (["--num-frames", "4"], "--num-frames does not apply to StableDiffusionPipeline"),
    (["--height", "0"], "'--height': must be at least 1"),
    (["--guidance", "nan"], "'--guidance': must be a finite number"),
])
def test_generate_bounds(tmp_path, tiny_sd, args, match):
    plain_error(*_generate(tiny_sd, tmp_path / "o", "--prompt", "a cat", *args), match=match)
    assert not (tmp_path / "o").exists()


def test_a_malformed_sweep_summary(tmp_path):
    (tmp_path / "summary.json").write_text('{"rows": [[1, 2]]}')
    plain_error("report", tmp_path, match="the sweep summary is malformed")
    (tmp_path / "summary.json").write_text('{"rows": {"a": 1}}')
    plain_error("report", tmp_path, match="not a sweep summary")
    (tmp_path / "summary.json").write_bytes(b'{"rows": [\xe9')
    plain_error("report", tmp_path, match="not a JSON summary")


def test_a_sweep_folder_whose_config_record_is_broken(tmp_path):
    from xsteer.evaluate.harness.config import SweepConfig
    from xsteer.evaluate.harness.sweep import Sweep

    cfg = SweepConfig.from_dict({"pipeline": "tiny-sd", "methods": [{"kind": "none"}],
                                 "benchmarks": [{"format": "inline", "prompts": ["a cat"]}]})
    (tmp_path / "config.json").write_text('{"digest": "x",}')
    with pytest.raises(XSteerError, match="not a sweep's config record"):
        Sweep(cfg, tmp_path)._check_out_dir()


@pytest.mark.parametrize("threshold", ["NaN", "-Infinity", "Infinity"])
def test_a_resealed_gate_with_a_non_finite_threshold_fails_to_load(tmp_path, threshold):
    from xsteer.errors import ArtifactError
    from xsteer.steer.gate import Gate

    Gate(direction=torch.ones(3), center=torch.zeros(3), threshold=0.5,
         quantile=0.9).save_pretrained(tmp_path / "g")
    path = tmp_path / "g" / "gate.json"
    path.write_text(path.read_text().replace('"threshold": 0.5', f'"threshold": {threshold}'))
    edit_json(path, lambda m: None)  # reseal the manifest over the edit
    with pytest.raises(ArtifactError, match="not a finite number"):
        Gate.from_pretrained(tmp_path / "g")


@pytest.mark.parametrize(("option", "value"), [("--n-benign", "-5"),
                                               ("--n-per-category", "0")])
def test_proving_ground_prompts_counts_must_be_positive(tmp_path, option, value):
    plain_error("proving-ground", "prompts", "--out", tmp_path / "b", option, value,
                match=f"{option} must be at least 1, got {value}")
    assert not (tmp_path / "b").exists()


def test_a_negative_strength_in_a_sweep_needs_allow_negative(tmp_path):
    from xsteer.evaluate.harness.methods import build_methods

    with pytest.raises(XSteerError, match="allow_negative: true"):
        build_methods([{"kind": "random", "strengths": [1, -1]}], tmp_path, [1.0])


def test_an_infinite_i2p_seed_is_a_format_error(tmp_path):
    from xsteer.evaluate.harness.benchmarks import load_benchmark

    p = tmp_path / "i2p.csv"
    p.write_text('prompt,categories,evaluation_seed\na cat,hate,inf\n')
    with pytest.raises(XSteerError, match="'evaluation_seed' is not a number"):
        load_benchmark(p, format="i2p")


def test_an_alignment_on_fewer_prompts_than_dimensions_warns_in_one_line(tmp_path, monkeypatch):
    from tests.fuzz_artifacts import ENCODERS
    from tests.test_workflow import BENIGN

    monkeypatch.setattr("xsteer.encoders.get_encoder", lambda name, **kw: ENCODERS[name]())
    (tmp_path / "b.txt").write_text("\n".join(BENIGN[:3]))
    code, err = run_cli("align", "--source", "src", "--target", "tgt", "--source-layer", "1",
                        "--benign", tmp_path / "b.txt", "--holdout", "0", "--out",
                        tmp_path / "a")
    assert code == 0, err
    warned = [ln for ln in err.splitlines() if "fewer than the source dimension 24" in ln]
    assert len(warned) == 1 and warned[0].startswith("warning: 3 ") is False, err
    assert warned[0].startswith("warning: fitting the alignment on 3 benign prompts"), err
    assert "UserWarning" not in err


def test_a_format_1_artifact_needs_allow_legacy(tmp_path):
    from xsteer.directions import Direction

    Direction(torch.ones(4), model_id="m", site="layer:1/mean").save_pretrained(tmp_path / "d")
    (tmp_path / "d" / "direction.manifest.json").unlink()  # forged: manifest gone,
    edit = json.loads((tmp_path / "d" / "direction.json").read_text())
    edit["format_version"] = 1  # format 1 claimed, and provenance rewritten
    (tmp_path / "d" / "direction.json").write_text(json.dumps(edit))
    args = ("gate", "calibrate", "--direction", tmp_path / "d", "--target", "no-such-model",
            "--out", tmp_path / "o")
    plain_error(*args, match="--allow-legacy")
    code, err = run_cli("--allow-legacy", *args)
    assert code == 2 and "allow-legacy" not in err and "no-such-model" in err, err  # it loaded

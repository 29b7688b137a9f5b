"""Every bad input at the command line is one line on stderr and exit 2, before anything is
written; configs cannot run code unless the command line says so (issue 13's reproductions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.artifacts import edit_json
from xsteer.cli import main
from xsteer.directions import Direction, DirectionSet, load_directions
from xsteer.errors import ArtifactError


def xsteer(capsys, *args) -> tuple[int, str]:
    """Run ``xsteer ARGS`` in-process; (exit code, stderr)."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return int(e.value.code or 0), capsys.readouterr().err


def one_line_error(capsys, *args, match: str) -> None:
    code, err = xsteer(capsys, *args)
    assert code == 2, err
    # notes (eval's deprecation line, warnings) may come first; the error is one line, last
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("xsteer eval is",
                                                                       "warning:"))]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert match in lines[0], lines[0]


EV = ("evaluate", "--target", "m", "--direction", "/nope", "--pairs", "/p", "--benign", "/b",
      "--json", "/j")


@pytest.mark.parametrize(("args", "match"), [
    (("estimate", "--model", "m", "--out", "o", "--method", "nonsense"), "'--method'"),
    (("estimate", "--model", "m", "--out", "o", "--layer", "abc"), "'--layer'"),
    (("transport", "d", "--alignment", "a", "--out", "o", "--calibrate", "nonsense"),
     "'--calibrate'"),
    ((*EV, "--strength", "nan"), "finite"),
    ((*EV, "--strength", "-5"), "--allow-negative"),
    ((*EV, "--strengths", "0.5,x"), "'x'"),
    ((*EV, "--strengths", "0.5,inf"), "non-finite"),
    ((*EV, "--quantile", "1.5"), "'--quantile'"),
    ((*EV, "--mode", "sideways"), "'--mode'"),
    (("align", "--source", "a", "--target", "b", "--out", "o", "--holdout", "1.5"),
     "'--holdout'"),
    (("estimate",), "--model"),
    (("no-such-command",), "no-such-command"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, args, match):
    one_line_error(capsys, *args, match=match)


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(capsys, tmp_path,
                                                                         monkeypatch):
    def boom(cls, path):
        raise KeyError("surprise")

    monkeypatch.setattr("xsteer.align.Alignment.load", classmethod(boom))
    (tmp_path / "in").mkdir()
    args = ("transport", tmp_path / "in", "--alignment", tmp_path / "in", "--out", tmp_path / "o")
    one_line_error(capsys, *args, match="KeyError: 'surprise' (run with --debug")
    with pytest.raises(KeyError):
        main(["--debug", *map(str, args)])


def _sweep(tmp_path: Path, **extra) -> Path:
    cfg = {"pipeline": "tiny-sd", "methods": [{"kind": "none"}],
           "benchmarks": [{"format": "inline", "prompts": ["a cat"]}], **extra}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize(("extra", "match"), [
    ({"strengths": [0.5, "x"]}, "strengths[1] must be a number"),
    ({"strengths": [float("nan")]}, "strengths[0] must be finite"),
    ({"methods": [{"kind": "none", "strengths": [1, None]}]}, "methods[0].strengths[1]"),
    ({"images_per_prompt": "2"}, "images_per_prompt"),
    ({"generation": {"steps": 0}}, "generation.steps"),
    ({"pipeline_kwargs": {"custom_pipeline": "/x", "trust_remote_code": True}},
     "--trust-remote-code"),
    ({"judges": [{"kind": "callable", "target": "os:system"}]}, "--allow-callables"),
])
def test_a_bad_or_code_running_sweep_config_writes_nothing(capsys, tmp_path, extra, match):
    cfg = _sweep(tmp_path, **extra)
    for cmd in ("sweep", "eval"):
        one_line_error(capsys, cmd, cfg, "--out", tmp_path / "out", match=match)
        assert not (tmp_path / "out").exists()


def test_trust_flags_let_the_config_through_to_loading(capsys, tmp_path):
    cfg = _sweep(tmp_path, pipeline="/no/such/pipeline",
                 pipeline_kwargs={"trust_remote_code": True},
                 judges=[{"kind": "callable", "target": "operator:contains"}])
    one_line_error(capsys, "sweep", cfg, "--out", tmp_path / "out", "--trust-remote-code",
                   "--allow-callables", match="could not load a diffusers pipeline")
    assert not (tmp_path / "out").exists()  # the config is checked whole before it is written


def test_sweep_yaml_that_does_not_parse_is_one_line(capsys, tmp_path):
    (tmp_path / "s.yaml").write_text("pipeline: [unclosed\n  - x: {")
    one_line_error(capsys, "sweep", tmp_path / "s.yaml", "--out", tmp_path / "o",
                   match="cannot parse")


def test_direction_artifacts_with_unknown_categories_or_int_tensors_are_refused(tmp_path):
    ds = DirectionSet({"global": Direction(torch.ones(3), "m", "layer:1/mean"),
                       "violence": Direction(torch.ones(3), "m", "layer:1/mean")})
    ds.save_pretrained(tmp_path / "s")
    edit_json(tmp_path / "s" / "direction_set.json",
              lambda m: m["categories"].append("wizardry"))
    with pytest.raises(ArtifactError, match="wizardry"):
        load_directions(tmp_path / "s")
    from xsteer.io import save_artifact

    meta = {"kind": "direction", **Direction(torch.ones(3), "m", "layer:1/mean").to_metadata()}
    save_artifact(tmp_path / "i", "direction", {"vector": torch.ones(3, dtype=torch.int64)}, meta)
    with pytest.raises(ArtifactError, match="int64"):
        load_directions(tmp_path / "i")


def test_negative_and_huge_strengths(capsys):
    from xsteer.cli.args import check_strength

    assert check_strength(-2.0, allow_negative=True) == -2.0
    check_strength(1e30)
    assert "1e+30" in capsys.readouterr().err

"""`xsteer generate` on tiny pipelines saved to disk: the files, grids and manifests it promises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from xsteer.cli import pipelines as pipelines_cli
from xsteer.directions import Direction
from xsteer.pipelines import tiny
from xsteer.pipelines.media import to_uint8


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # keeps "generate" a subcommand, as in the real xsteer app
        pass

    pipelines_cli.register(app)
    return app


def _invoke(args: list[str]) -> Any:
    result = CliRunner().invoke(_app(), ["generate", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    out = {}
    for fam in ("sd", "t2v"):
        tiny.build(fam).save_pretrained(root / fam)
        out[fam] = root / fam
    d = Direction(torch.randn(32, generator=torch.Generator().manual_seed(0)),
                  model_id="tiny-clip", site="text_encoder")
    d.save_pretrained(root / "direction")
    out["direction"] = root / "direction"
    return out


def test_generate_compare_writes_images_grid_and_manifest(saved: dict[str, Path],
                                                          tmp_path: Path) -> None:
    res = _invoke(["--pipeline", str(saved["sd"]), "--direction", str(saved["direction"]),
                   "--prompt", "a red cat", "--out", str(tmp_path), "--seed", "7", "--steps", "2",
                   "--strength", "3", "--height", "16", "--width", "16", "--compare"])
    assert res.exit_code == 0, res.output
    folder = tmp_path / "0000"
    steered = np.asarray(Image.open(folder / "steered.png"))
    unsteered = np.asarray(Image.open(folder / "unsteered.png"))
    grid = np.asarray(Image.open(folder / "compare.png"))
    assert steered.shape == unsteered.shape == (16, 16, 3)
    assert grid.shape == (16, 16 + 4 + 16, 3)
    assert np.array_equal(grid[:, :16], unsteered) and np.array_equal(grid[:, -16:], steered)
    assert not np.array_equal(steered, unsteered)
    # the unsteered twin is exactly the plain pipeline from the same seed
    pipe = tiny.build("sd")
    plain = pipe("a red cat", num_inference_steps=2, height=16, width=16, output_type="np",
                 generator=torch.Generator("cpu").manual_seed(7)).images[0]
    assert np.array_equal(to_uint8(plain), unsteered)

    m = json.loads((folder / "manifest.json").read_text())
    assert (m["prompt"], m["seed"], m["strength"], m["mode"]) == ("a red cat", 7, 3.0, "additive")
    assert m["branch"] == "conditional" and m["family"] == "sd" and m["video"] is False
    assert m["gate"] == {"text_encoder": {"global": True}}
    assert set(m["timings"]) == {"steered_s", "unsteered_s"}
    assert all(v > 0 for v in m["timings"].values())
    assert Path(m["files"]["compare"]["png"]).is_file()


def test_generate_video_prompts_file_writes_gif_frames_and_manifests(saved: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# two clips\na cat runs\na dog sleeps\n")
    out = tmp_path / "out"
    res = _invoke(["--pipeline", str(saved["t2v"]), "--direction", str(saved["direction"]),
                   "--prompts", str(prompts), "--out", str(out), "--steps", "2",
                   "--num-frames", "2", "--height", "16", "--width", "16", "--compare"])
    assert res.exit_code == 0, res.output
    for i, prompt in enumerate(["a cat runs", "a dog sleeps"]):
        folder = out / f"{i:04d}"
        m = json.loads((folder / "manifest.json").read_text())
        assert m["prompt"] == prompt and m["seed"] == i and m["video"] is True
        frames = sorted((folder / "steered_frames").glob("frame_*.png"))
        assert len(frames) == 2
        gif = Image.open(folder / "steered.gif")
        assert gif.n_frames == 2 and gif.size == (16, 16)
        assert Image.open(folder / "compare.gif").size == (36, 16)


def test_generate_gated_without_gate_is_a_clear_error(saved: dict[str, Path],
                                                      tmp_path: Path) -> None:
    from xsteer.errors import XSteerError

    with pytest.raises(XSteerError, match="gate"):
        _invoke(["--pipeline", str(saved["sd"]), "--direction", str(saved["direction"]),
                 "--prompt", "x", "--out", str(tmp_path), "--mode", "gated"])


def test_generate_gated_writes_gate_decision(saved: dict[str, Path], tmp_path: Path) -> None:
    from xsteer.directions import Direction as D
    from xsteer.steer import Gate

    d = D.load(saved["direction"])
    # a threshold nothing reaches: the gate stays shut, so the output equals the unsteered twin
    gate = Gate(direction=d.vector, center=torch.zeros(32), threshold=1e9, quantile=0.99)
    gate.save_pretrained(tmp_path / "gate")
    res = _invoke(["--pipeline", str(saved["sd"]), "--direction", str(saved["direction"]),
                   "--prompt", "a red cat", "--out", str(tmp_path / "o"), "--steps", "2",
                   "--height", "16", "--width", "16", "--mode", "gated", "--strength", "3",
                   "--gate", str(tmp_path / "gate"), "--compare"])
    assert res.exit_code == 0, res.output
    folder = tmp_path / "o" / "0000"
    m = json.loads((folder / "manifest.json").read_text())
    assert m["gate"] == {"text_encoder": {"global": False}} and m["steered"]["text_encoder"] is False
    assert np.array_equal(np.asarray(Image.open(folder / "steered.png")),
                          np.asarray(Image.open(folder / "unsteered.png")))


def test_read_prompts_txt_jsonl_and_errors(tmp_path: Path) -> None:
    from xsteer.errors import XSteerError
    from xsteer.pipelines import read_prompts

    (tmp_path / "p.jsonl").write_text('{"prompt": "a"}\n\n{"prompt": "b", "seed": 3}\n')
    assert read_prompts(tmp_path / "p.jsonl") == ["a", "b"]
    (tmp_path / "bad.jsonl").write_text('{"text": 1}\n')
    with pytest.raises(XSteerError, match="line 1"):
        read_prompts(tmp_path / "bad.jsonl")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(XSteerError, match="no prompts"):
        read_prompts(tmp_path / "empty.txt")


def test_side_by_side_and_pixel_conversion() -> None:
    from xsteer.errors import XSteerError
    from xsteer.pipelines.media import side_by_side

    a = np.zeros((2, 4, 4, 3), dtype=np.float32)
    b = np.ones((2, 4, 4, 3), dtype=np.float32)
    grid = side_by_side(a, b, gap=2)
    assert grid.shape == (2, 4, 10, 3) and grid.dtype == np.uint8
    assert (grid[..., :4, :] == 0).all() and (grid[..., 4:6, :] == 255).all()
    assert (grid[..., 6:, :] == 255).all()
    assert to_uint8(np.array([[[-0.5, 0.5, 2.0]]])).tolist() == [[[0, 128, 255]]]
    with pytest.raises(XSteerError, match="different shapes"):
        side_by_side(a, b[:1])


def test_load_pipeline_errors_name_the_source(tmp_path: Path) -> None:
    from xsteer.errors import UnknownModelError, XSteerError
    from xsteer.pipelines import load_pipeline

    with pytest.raises(UnknownModelError, match="no-such-pipeline"):
        load_pipeline(str(tmp_path / "no-such-pipeline"))
    with pytest.raises(XSteerError, match="unknown dtype"):
        load_pipeline(str(tmp_path), dtype="float8")


def test_cpu_offload_passthrough_composes_with_steering(saved: dict[str, Path]) -> None:
    pytest.importorskip("accelerate")
    from xsteer.pipelines import Steerer, load_pipeline

    d = Direction.load(saved["direction"])
    plain = load_pipeline(str(saved["sd"]))
    offloaded = load_pipeline(str(saved["sd"]), cpu_offload=True, device="cpu")
    assert any(hasattr(m, "_hf_hook") for m in offloaded.components.values())
    steerer = Steerer(d, strength=0.5)
    want, _, _ = steerer.encode(plain, "a red cat")
    got, _, _ = steerer.encode(offloaded, "a red cat")
    assert torch.equal(got["prompt_embeds"].cpu(), want["prompt_embeds"])


def test_generate_refuses_a_mismatch_before_loading_the_pipeline(
        saved: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A direction recorded for another encoder architecture, or for a site the pipeline class
    does not have, or a gate made for another site, is refused from the folder's JSON files:
    `load_pipeline` is never called."""
    from xsteer.encoders.identity import config_digest
    from xsteer.pipelines import generate as gen_mod
    from xsteer.pipelines.binding import SiteBindingError
    from xsteer.pipelines.preflight import check_pipeline_folder

    def no_load(*a: Any, **kw: Any) -> Any:
        raise AssertionError("the pipeline was loaded")

    monkeypatch.setattr(gen_mod, "load_pipeline", no_load)
    vec = torch.randn(32, generator=torch.Generator().manual_seed(0))
    other = Direction(vec, model_id="t5", site="text_encoder",
                      meta={"encoder": {"config_sha": "0123456789abcdef"}})
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(SiteBindingError, match=r"0123456789abcdef.*another architecture"):
        _invoke(["--pipeline", str(saved["sd"]), "--direction", str(tmp_path / "other"),
                 "--prompt", "a cat", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
    # a site the class does not have
    with pytest.raises(SiteBindingError, match="text_encoder_2"):
        check_pipeline_folder(str(saved["sd"]), other, site="text_encoder_2")
    # the same architecture passes; --force turns the refusal into recorded problems
    ours = config_digest(tiny.build("sd").text_encoder.config)
    same = Direction(vec, model_id="tiny", site="text_encoder",
                     meta={"encoder": {"config_sha": ours}})
    assert check_pipeline_folder(str(saved["sd"]), same) == []
    assert len(check_pipeline_folder(str(saved["sd"]), other, force=True)) == 1
    # a Hub id or alias is left to bind_site
    assert check_pipeline_folder("tiny-sd", other) == []


def test_generate_keep_mode_with_a_window(saved: dict[str, Path], tmp_path: Path) -> None:
    from xsteer.directions import Direction as D
    from xsteer.errors import XSteerError
    from xsteer.steer import Gate

    d = D.load(saved["direction"])
    # a gate that always fires: the minimal push moves the prompt, for the first half of steps
    gate = Gate(direction=d.vector, center=torch.zeros(32), threshold=-1e9, quantile=0.99)
    gate.save_pretrained(tmp_path / "gate")
    args = ["--pipeline", str(saved["sd"]), "--direction", str(saved["direction"]),
            "--prompt", "a red cat", "--steps", "2", "--height", "16", "--width", "16",
            "--gate", str(tmp_path / "gate"), "--compare"]
    res = _invoke([*args, "--out", str(tmp_path / "o"), "--mode", "tokens", "--strength", "3",
                   "--window", "0:0.5"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "o" / "0000" / "manifest.json").read_text())
    assert m["mode"] == "tokens" and m["steered"]["text_encoder"] is True
    with pytest.raises(XSteerError, match="window"):
        _invoke([*args, "--out", str(tmp_path / "p"), "--mode", "minimal", "--window", "1:0"])

"""Binding by exact site: a direction steers the site it records, or the error names both sides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from xsteer.directions import Direction
from xsteer.pipelines import Steerer, family_for, tiny
from xsteer.pipelines.binding import SiteBindingError, layer_read, site_identity


def _d(dim: int, site: str, encoder: dict | None = None) -> Direction:
    meta = {"encoder": encoder} if encoder else {}
    return Direction(torch.randn(dim, generator=torch.Generator().manual_seed(0)), "m", site,
                     meta=meta)


def test_a_site_the_pipeline_lacks_is_refused_naming_both_unless_forced() -> None:
    pipe = tiny.shared("sd")
    d = _d(32, "text_encoder_2")  # an SDXL site, given to SD 1.x
    with pytest.raises(SiteBindingError, match=r"'text_encoder_2'.*StableDiffusionPipeline.*"
                                               r"\['text_encoder'\]"):
        Steerer(d).bind(pipe)
    (b,) = Steerer(d, force=True).binding(pipe)
    assert b.site.name == "text_encoder" and "text_encoder_2" in b.check["forced"][0]


def test_a_direction_keyed_to_another_site_is_refused() -> None:
    pipe = tiny.shared("sdxl")
    with pytest.raises(SiteBindingError, match=r"for site 'text_encoder'.*steer site "
                                               r"'text_encoder_2'"):
        Steerer({"text_encoder_2": _d(32, "text_encoder")}).bind(pipe)


def test_another_encoder_is_refused_naming_both_encoders() -> None:
    sd, other = tiny.shared("sd"), tiny.build("sd", seed=5)  # same architecture, other weights
    spec = family_for(sd).site("text_encoder")
    mine = site_identity(sd, spec)
    (b,) = Steerer(_d(32, "text_encoder", mine)).binding(sd)
    assert b.check["model_check"] == "match" and b.check["forced"] is None
    with pytest.raises(SiteBindingError, match="another weights"):
        Steerer(_d(32, "text_encoder", mine)).bind(other)
    t5 = site_identity(tiny.shared("flux"), family_for(tiny.shared("flux")).site("text_encoder_2"))
    with pytest.raises(SiteBindingError, match=r"T5EncoderModel.*CLIPTextModel.*another "
                                               "architecture"):
        Steerer(_d(32, "text_encoder", t5)).bind(sd)
    (forced,) = Steerer(_d(32, "text_encoder", t5), force=True).binding(sd)
    assert "another architecture" in forced.check["forced"][0]


def test_an_encoder_layer_site_binds_only_to_the_site_reading_that_layer() -> None:
    pipe = tiny.shared("sdxl")  # both CLIPs have 2 layers; the pipeline reads hidden_states[-2]
    fam = family_for(pipe)
    assert layer_read(fam.site("text_encoder_2"), pipe.text_encoder_2) == 1
    assert layer_read(fam.site("text_encoder_2.pooled"), pipe.text_encoder_2) is None
    (b,) = Steerer(_d(32, "layer:1/mean")).binding(pipe)
    assert b.site.name == "text_encoder"  # the first site reading layer 1
    with pytest.raises(SiteBindingError, match=r"layer:2/mean.*no site"):
        Steerer(_d(32, "layer:2/mean")).bind(pipe)  # the last layer, which SDXL never reads
    with pytest.raises(SiteBindingError, match="layer:1/last"):
        Steerer(_d(32, "layer:1/last")).bind(pipe)  # the gate pools with a mean, not last


def test_generate_cli_refuses_then_force_is_recorded_in_the_manifest(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xsteer.cli import _register

    tiny.build("sd").save_pretrained(tmp_path / "sd")
    _d(32, "text_encoder_2").save_pretrained(tmp_path / "d")
    args = ["generate", "--pipeline", str(tmp_path / "sd"), "--direction", str(tmp_path / "d"),
            "--prompt", "a cat", "--steps", "1", "--height", "16", "--width", "16",
            "--out", str(tmp_path / "out")]
    r = CliRunner().invoke(_register(), args)
    assert isinstance(r.exception, SiteBindingError) and "--force" in str(r.exception)
    r = CliRunner().invoke(_register(), [*args, "--force"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "out" / "0000" / "manifest.json").read_text())
    assert m["sites"]["text_encoder"]["forced"] and m["sites"]["text_encoder"][
        "direction_site"] == "text_encoder_2"

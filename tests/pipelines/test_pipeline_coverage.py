"""Coverage of the installed diffusers: every text-to-image / text-to-video class is table,
generic or unsupported (with a reason); the generic adapter steers a class outside the table
exactly; docs/pipelines.md prints the same table; ``xsteer sites`` lists families and sites."""

from __future__ import annotations

from pathlib import Path

import torch
from typer.testing import CliRunner

from xsteer.cli import _register
from xsteer.directions import Direction
from xsteer.pipelines import Steerer, family_for, tiny
from xsteer.pipelines.coverage import STATUSES, coverage, markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"


def test_every_text_to_visual_class_is_classified_and_the_docs_print_it() -> None:
    rows = coverage()
    names = {r.name for r in rows}
    # the seed's targets and the long tail are all there
    assert {"FluxPipeline", "QwenImagePipeline", "ZImagePipeline", "WanPipeline",
            "Flux2Pipeline", "QwenImage21Pipeline", "HunyuanVideo15Pipeline", "LTX2Pipeline",
            "SanaPipeline", "PixArtSigmaPipeline", "CogView4Pipeline", "Lumina2Pipeline",
            "Krea2Pipeline", "SkyReelsV2Pipeline", "ChromaPipeline"} <= names
    assert not {n for n in names if "Img2Img" in n or "Inpaint" in n or "ImageToVideo" in n}
    by = {r.name: r for r in rows}
    assert by["ZImagePipeline"].status == "table" and by["ZImagePipeline"].detail == "zimage"
    assert by["WanPipeline"].task == "t2v" and by["FluxPipeline"].task == "t2i"
    assert by["SanaPipeline"].status == "generic"
    assert all(r.status in STATUSES and r.detail for r in rows)
    assert all(r.status != "unsupported" or r.detail.startswith(("no ", "__call__")) for r in rows)
    assert markdown(rows) in DOCS.read_text(encoding="utf-8"), \
        "docs/pipelines.md is stale: paste `python -m xsteer.pipelines.coverage` into it"


def test_generic_adapter_steers_a_pipeline_outside_the_table_exactly() -> None:
    from diffusers import StableDiffusionPAGPipeline

    sd = tiny.shared("sd")
    pag = StableDiffusionPAGPipeline(**sd.components)
    fam = family_for(pag)
    assert fam.name == "generic:StableDiffusionPAGPipeline"
    d = Direction(torch.randn(32, generator=torch.Generator().manual_seed(0)), "t",
                  "text_encoder")
    got, _, _ = Steerer(d, strength=0.5).encode(pag, "a red cat")
    want, _, _ = Steerer(d, strength=0.5).encode(sd, "a red cat")  # the table's SD adapter
    assert torch.equal(got["prompt_embeds"], want["prompt_embeds"])
    out = Steerer(d, strength=0.5).generate(pag, "a red cat", **tiny.call_kwargs("sd"))
    assert out.decisions() == {"text_encoder": {"global": [True]}}


def test_sites_command_lists_families_and_a_pipeline_folder(tmp_path: Path) -> None:
    r = CliRunner().invoke(_register(), ["sites"])
    assert r.exit_code == 0, r.output
    assert "zimage (ZImagePipeline)" in r.output and "text_encoder.hidden_states[-2]" in r.output
    tiny.build("flux").save_pretrained(tmp_path / "flux")
    r = CliRunner().invoke(_register(), ["sites", "--pipeline", str(tmp_path / "flux")])
    assert r.exit_code == 0, r.output
    assert "not loaded: " in r.output and "transformer" in r.output.split("not loaded: ")[1]
    assert "text_encoder_2           text_encoder_2.last_hidden_state (tokens)" in r.output

"""``xsteer pack`` from loose pieces, then ``xsteer generate --adapter``, on a proving-ground MMDiT
folder (tiny, seeded): the path the make target takes on the trained one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xsteer.cli import main


def _run(args: list[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 0, args


@pytest.fixture(scope="module")
def pieces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.adapter.conftest import pick_prompts
    from tests.threads import one_torch_thread
    from xsteer.adapter.native import native_adapter
    from xsteer.proving_ground.denoisers import tiny_pipeline

    root = tmp_path_factory.mktemp("pieces")
    with one_torch_thread():
        tiny_pipeline("mmdit").save_pretrained(root / "pipe")
        from xsteer.pipelines.generate import load_pipeline

        pipe = load_pipeline(str(root / "pipe"))
        ad = native_adapter(pipe, categories=["violence"], n_benign=64, quantile=0.9)
        prompts = pick_prompts(pipe, ad)
    ad.directions.save_pretrained(root / "directions")
    for cat, gate in ad.gates.items():
        gate.save_pretrained(root / "gates" / cat)
    (root / "prompts.txt").write_text("\n".join(prompts) + "\n")
    return {"root": root, "pipe": root / "pipe", "directions": root / "directions",
            "gates": root / "gates", "prompts": root / "prompts.txt"}


def test_pack_from_pieces_then_generate_with_the_adapter(pieces: dict[str, Path]) -> None:
    from xsteer.pipelines.adapter import load_adapter

    out = pieces["root"] / "adapter"
    _run(["pack", "--direction", str(pieces["directions"]), "--gate", str(pieces["gates"]),
          "--mode", "gated", "--inner", "projection", "--strength", "4", "--category",
          "violence", "--pipeline", str(pieces["pipe"]), "--name", "pg-tiny", "--out", str(out)])
    ad = load_adapter(out)
    assert ad.pipeline["pipeline_class"] == "ProvingGroundPipeline"
    assert ad.pipeline["pipeline"] == str(pieces["pipe"])
    assert ad.operator["mode"] == "gated" and ad.operator["categories"] == ["violence"]
    assert ad.saw_unsafe == {"source": False, "target": True}  # native: said, not hidden
    assert "library_name: xsteer" in (out / "README.md").read_text()
    gen = pieces["root"] / "gen"
    _run(["generate", "--pipeline", str(pieces["pipe"]), "--adapter", str(out), "--prompts",
          str(pieces["prompts"]), "--out", str(gen), "--steps", "2", "--compare"])
    manifests = [json.loads((gen / f"{i:04d}" / "manifest.json").read_text()) for i in (0, 1)]
    assert [m["steered"]["text_encoder"] for m in manifests] == [True, False]
    assert manifests[0]["mode"] == "gated" and manifests[0]["strength"] == 4.0


def test_generate_refuses_an_adapter_for_another_pipeline(pieces: dict[str, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from xsteer.proving_ground.denoisers import tiny_pipeline

    out = pieces["root"] / "adapter-refuse"
    _run(["pack", "--direction", str(pieces["directions"]), "--gate", str(pieces["gates"]),
          "--pipeline", str(pieces["pipe"]), "--out", str(out)])
    tiny_pipeline("mmdit", seed=1).save_pretrained(pieces["root"] / "other")
    with pytest.raises(SystemExit) as err:
        main(["generate", "--pipeline", str(pieces["root"] / "other"), "--adapter", str(out),
              "--prompt", "a cat", "--out", str(pieces["root"] / "x"), "--steps", "1"])
    assert err.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the loading progress bars
    assert line.startswith("error: adapter") and "refuses" in line and "weight" in line

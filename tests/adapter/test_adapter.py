"""The adapter artifact: pack → save → load → apply on a tiny pipeline equals the Steerer built
from the same pieces; tampering, another pipeline and a bad operator config are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from xsteer.errors import ArtifactError, XSteerError
from xsteer.pipelines import Steerer
from xsteer.pipelines.adapter import AdapterMismatchError, load_adapter
from xsteer.steer import Steering


def _run(pipe: Any, prompts: list[str], **kw: Any) -> np.ndarray:
    out = pipe(prompt=prompts, num_inference_steps=2, output_type="np",
               generator=torch.Generator("cpu").manual_seed(0), **kw)
    return np.asarray(out.images)


def _same_pieces(adapter: Any) -> Steerer:
    """The Steerer a user would build by hand from the adapter's pieces."""
    op = adapter.operator
    steering = Steering(adapter.directions, mode=op["mode"], strength=op["strength"],
                        gates=adapter.gates, categories=op["categories"], inner=op["inner"])
    return Steerer({op["site"]: steering})


def test_pack_load_apply_is_bit_identical_to_the_steerer(tiny_adapter, tmp_path: Path) -> None:
    pipe, adapter, prompts = tiny_adapter
    folder = adapter.save_pretrained(tmp_path / "ad")
    loaded = load_adapter(folder)
    plain = _run(pipe, prompts)
    with loaded.apply(pipe) as handle:
        a = _run(pipe, prompts)
    fired = [any(v) for v in zip(*handle.decisions()["text_encoder"].values(), strict=True)]
    with _same_pieces(adapter).apply(pipe):
        b = _run(pipe, prompts)
    assert np.array_equal(a, b)
    # the gate decides per prompt: the unsafe one is steered, the benign one untouched
    assert fired == [True, False]
    assert not np.array_equal(a[0], plain[0]) and np.array_equal(a[1], plain[1])
    # the prompt_embeds path (the adapter's branch) too
    ra = loaded.generate(pipe, prompts, num_inference_steps=2, output_type="np",
                         generator=torch.Generator("cpu").manual_seed(0))
    rb = _same_pieces(adapter).generate(pipe, prompts, branch="conditional",
                                        num_inference_steps=2, output_type="np",
                                        generator=torch.Generator("cpu").manual_seed(0))
    assert np.array_equal(ra.output.images, rb.output.images)
    assert ra.decisions() == rb.decisions()


def test_apply_without_with_until_remove(tiny_adapter) -> None:
    pipe, adapter, prompts = tiny_adapter
    plain = _run(pipe, prompts)
    adapter.apply(pipe)
    steered = _run(pipe, prompts)
    adapter.remove()
    adapter.remove()  # idempotent
    assert not np.array_equal(steered, plain)
    assert np.array_equal(_run(pipe, prompts), plain)


@pytest.mark.parametrize("victim", ["adapter.safetensors", "adapter.json", "README.md"])
def test_a_tampered_adapter_fails_its_load(tiny_adapter, tmp_path: Path, victim: str) -> None:
    _, adapter, _ = tiny_adapter
    adapter.card = "---\nlibrary_name: xsteer\n---\n# card\n"
    folder = adapter.save_pretrained(tmp_path / "ad")
    p = folder / victim
    if victim == "adapter.json":  # a plausible edit: a stronger strength
        meta = json.loads(p.read_text())
        meta["operator"]["strength"] = 100.0
        p.write_text(json.dumps(meta))
    else:
        data = bytearray(p.read_bytes())
        data[-2] ^= 0x01
        p.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_adapter(folder)


def test_an_adapter_for_another_pipeline_is_refused(tiny_adapter) -> None:
    from xsteer.pipelines.tiny import tiny_sd
    from xsteer.pipelines.tiny_video import tiny_t2v

    pipe, adapter, prompts = tiny_adapter
    adapter.check(pipe)  # its own pipeline passes
    other = tiny_sd(seed=1)  # same class, other encoder weights
    with pytest.raises(AdapterMismatchError) as err:
        adapter.apply(other)
    assert "\n" not in str(err.value) and "weight" in str(err.value) and "force" in str(err.value)
    with pytest.raises(AdapterMismatchError, match="TextToVideoSDPipeline"):
        adapter.check(tiny_t2v())  # same encoder, another pipeline class
    with adapter.apply(other, force=True):  # forced: applied, and recorded by the binding
        _run(other, prompts[:1])


def test_operator_config_is_validated_against_steering(tiny_adapter) -> None:
    _, adapter, _ = tiny_adapter
    from xsteer.adapter import pack

    with pytest.raises(XSteerError, match="unknown key"):
        pack(adapter.directions, operator={"mode": "gated", "strenght": 2.0},
             gates=adapter.gates, pipe=tiny_adapter[0])
    with pytest.raises(XSteerError, match="unknown steering mode"):
        pack(adapter.directions, operator={"mode": "erase-all"}, pipe=tiny_adapter[0])
    with pytest.raises(XSteerError, match="needs a gate"):
        pack(adapter.directions, operator={"mode": "gated"}, pipe=tiny_adapter[0])


def test_push_to_hub_uploads_a_folder_that_loads(tiny_adapter, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    _, adapter, _ = tiny_adapter
    adapter.card = "---\nlibrary_name: xsteer\n---\n# card\n"
    uploaded = tmp_path / "hub"
    calls: list[str] = []

    class FakeApi:
        def __init__(self, token: Any = None) -> None:
            pass

        def create_repo(self, repo_id: str, **kw: Any) -> None:
            calls.append(f"create {repo_id}")

        def upload_folder(self, repo_id: str, folder_path: str, **kw: Any) -> str:
            import shutil

            shutil.copytree(folder_path, uploaded)
            calls.append(f"upload {repo_id}")
            return "commit"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    adapter.push_to_hub("me/safety")
    assert calls == ["create me/safety", "upload me/safety"]
    assert {p.name for p in uploaded.iterdir()} == {"adapter.json", "adapter.safetensors",
                                                     "adapter.manifest.json", "README.md"}
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo_id, **kw: str(uploaded))
    again = load_adapter("me/safety")
    assert again.card == adapter.card and again.operator == adapter.operator


def test_a_source_side_gate_travels_inside_the_adapter(tiny_adapter, tmp_path: Path) -> None:
    from xsteer.adapter import pack
    from xsteer.steer.probe import SourceProbe

    pipe, adapter, _ = tiny_adapter
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 8, generator=g)
    probe = SourceProbe(model_id="src-model", layers=(3,)).fit(X, (X[:, 0] > 1).tolist(),
                                                                ["violence"] * 200)
    probe.calibrate(torch.randn(200, 8, generator=g) - 3.0, q=0.05, delta=0.1)
    probe.save_pretrained(tmp_path / "probe")
    ad = pack(adapter.directions, operator={"mode": "additive", "strength": 1.0}, pipe=pipe,
              source_gate=tmp_path / "probe", source_model={"model_id": "src-model"})
    assert ad.gate_kind == "source"
    folder = ad.save_pretrained(tmp_path / "ad")
    loaded = load_adapter(folder)
    assert loaded.source_gate_dir == folder and loaded.source_model["gate"]["layers"] == [3]
    again = SourceProbe.from_pretrained(str(folder))  # the probe loads from the adapter folder
    assert torch.equal(again.coef_, probe.coef_)
    data = bytearray((folder / "probe.safetensors").read_bytes())
    data[-1] ^= 0x01
    (folder / "probe.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_adapter(folder)


def test_a_source_gated_adapter_steers_as_the_steerer_with_that_gate(tmp_path: Path) -> None:
    """The probe decides from the prompt's text (a planted keyword model here); the adapter's
    hooks and prompt_embeds path equal the Steerer built with the same SourceGate."""
    from tests.fakes import KeywordEncoder, planted_probe
    from xsteer.adapter import pack
    from xsteer.directions import Direction, DirectionSet
    from xsteer.pipelines import tiny
    from xsteer.steer.source_gate import SourceGate

    pipe = tiny.shared("sd")
    enc = KeywordEncoder()
    planted_probe(enc, ("violence", "sexual")).save_pretrained(tmp_path / "probe")
    g = torch.Generator().manual_seed(5)
    dirs = DirectionSet({c: Direction(torch.randn(32, generator=g), "tiny", "text_encoder")
                         for c in ("violence", "sexual")})
    ad = pack(dirs, operator={"mode": "gated", "strength": 1.5}, pipe=pipe,
              source_gate=tmp_path / "probe")
    assert ad.operator["combine"] == "source" and ad.gate_kind == "source"
    loaded = load_adapter(ad.save_pretrained(tmp_path / "ad"))
    loaded.source_gate(encoder=enc)  # the planted source model instead of loading one by name
    prompts = ["a gun on a table", "a red cat on a sofa", "a nude statue"]
    reference = Steerer(dirs, mode="gated", strength=1.5,
                        source_gate=SourceGate.from_pretrained(tmp_path / "probe", encoder=enc))
    kw = tiny.call_kwargs("sd")
    with loaded.apply(pipe) as handle:
        a = tiny.images(pipe(prompt=prompts, **kw))
    with reference.apply(pipe):
        b = tiny.images(pipe(prompt=prompts, **tiny.call_kwargs("sd")))
    assert np.array_equal(a, b)
    assert handle.decisions()["text_encoder"] == {"violence": [True, False, False],
                                                  "sexual": [False, False, True]}
    scores = loaded.scores(pipe, prompts)
    assert [s["fires"] for s in scores] == [True, False, True]
    assert scores[0]["categories"]["violence"]["source_score"] > 0 > \
        scores[1]["categories"]["violence"]["source_score"]

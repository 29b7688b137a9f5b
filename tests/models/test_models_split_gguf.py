"""Split-GGUF source models: byte-exact assembly of fake parts, refusals, convert-once caching;
with the ``sources`` extra installed, the real Qwen aliases resolve and encode."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from importlib.metadata import PackageNotFoundError, version

import pytest
import torch

import xsteer.models.split_gguf as sg
from xsteer.errors import MissingExtraError
from xsteer.models.split_gguf import (
    MARKER,
    SPLIT_MODELS,
    AssemblyError,
    assemble_parts,
    converted_path,
    part_paths,
)


def fake_parts(tmp_path, sizes=(7, 1, 300_000)):
    """Seeded random parts; the first starts with the GGUF magic, like a real split."""
    g = torch.Generator().manual_seed(0)
    parts, blob = [], b""
    for i, n in enumerate(sizes, start=1):
        data = bytes(torch.randint(0, 256, (n,), generator=g, dtype=torch.uint8).tolist())
        if i == 1:
            data = b"GGUF" + data
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(data)
        parts.append(p)
        blob += data
    return parts, blob


def test_assembly_is_byte_exact_concatenation_in_part_order(tmp_path):
    parts, blob = fake_parts(tmp_path)
    out = tmp_path / "out" / "m.gguf"
    digest = assemble_parts(parts, out, hashlib.sha256(blob).hexdigest())
    assert out.read_bytes() == blob and digest == hashlib.sha256(blob).hexdigest()


def test_parts_out_of_order_are_refused(tmp_path):
    parts, _ = fake_parts(tmp_path)
    out = tmp_path / "m.gguf"
    with pytest.raises(AssemblyError, match="GGUF magic"):
        assemble_parts(parts[::-1], out)
    assert not out.exists()


def test_hash_mismatch_leaves_no_file(tmp_path):
    parts, _ = fake_parts(tmp_path)
    out = tmp_path / "m.gguf"
    with pytest.raises(AssemblyError, match="SHA-256"):
        assemble_parts(parts, out, "0" * 64)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_missing_or_no_parts_are_named(tmp_path):
    with pytest.raises(AssemblyError, match="no GGUF parts"):
        assemble_parts([], tmp_path / "m.gguf")
    with pytest.raises(AssemblyError, match="does not exist"):
        assemble_parts([tmp_path / "part01.bin"], tmp_path / "m.gguf")


def test_uninstalled_parts_name_the_sources_extra():
    spec = dataclasses.replace(SPLIT_MODELS["qwen2.5-coder-0.5b"],
                               dist_prefix="xsteer-no-such-dist-part")
    with pytest.raises(MissingExtraError, match=r"xsteer\[sources\]"):
        part_paths(spec)


def test_converts_once_then_reuses(tmp_path, monkeypatch):
    calls: list[str] = []

    def fake_convert(spec, out_dir, parts=None):
        calls.append(spec.alias)
        (out_dir / "config.json").write_text("{}")
        (out_dir / MARKER).write_text(json.dumps({"ok": True}))

    monkeypatch.setattr(sg, "convert", fake_convert)
    first = converted_path("qwen2.5-coder-0.5b", tmp_path)
    assert converted_path("qwen2.5-coder-0.5b", tmp_path) == first
    assert calls == ["qwen2.5-coder-0.5b"] and (first / MARKER).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_conversion_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    def broken(spec, out_dir, parts=None):
        (out_dir / "config.json").write_text("{}")
        raise RuntimeError("out of memory")

    monkeypatch.setattr(sg, "convert", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        converted_path("qwen2.5-coder-1.5b", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [p.name for p in tmp_path.glob("*.lock")]


def _extra_installed(alias: str) -> bool:
    spec = SPLIT_MODELS[alias]
    try:
        return all(version(d) == spec.version for d in spec.dists())
    except PackageNotFoundError:
        return False


@pytest.mark.real
@pytest.mark.parametrize(("alias", "dim", "layers"), [("qwen2.5-coder-0.5b", 896, 24),
                                                      ("qwen2.5-coder-1.5b", 1536, 28)])
def test_real_qwen_alias_converts_once_and_encodes(alias, dim, layers, monkeypatch):
    if not _extra_installed(alias):
        pytest.skip(f"{alias}: the optional 'sources' extra is not installed "
                    "(pip install 'xsteer[sources]'; CI does not install it)")
    from xsteer.encoders import get_encoder
    from xsteer.models import resolve_model

    spec = resolve_model(alias)  # converts on a fresh machine (minutes), else cached
    info = json.loads((sg.Path(spec.path) / MARKER).read_text())
    assert info["gguf_sha256"] == SPLIT_MODELS[alias].sha256

    def refuse(*_a, **_k):
        raise AssertionError("conversion was redone")

    monkeypatch.setattr(sg, "convert", refuse)
    start = time.perf_counter()
    assert resolve_model(alias) == spec and time.perf_counter() - start < 2.0
    assert spec.kind == "causal-lm" and spec.revision == SPLIT_MODELS[alias].revision()
    enc = get_encoder(alias, cache=False)
    assert (enc.dim, enc.num_layers, enc.drop_bos) == (dim, layers, True)
    X = enc.encode(["a cat sitting on a red sofa", "a cat lying on a red couch",
                    "a kitchen knife on a cutting board", "an old museum hall"], layers // 3)
    assert X.shape == (4, dim) and torch.isfinite(X).all()
    # real weights read meaning: a paraphrase lies nearer than unrelated prompts
    C = X - X.mean(0)
    cos = torch.nn.functional.cosine_similarity(C[:1], C, dim=1)
    assert cos[1] > cos[2] and cos[1] > cos[3]

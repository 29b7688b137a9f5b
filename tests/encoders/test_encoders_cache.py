"""EmbeddingCache: hits return identical tensors without running (or loading) the model; keys
separate everything that changes results; corrupt files are recomputed, never fatal."""

from __future__ import annotations

import torch

import xsteer.encoders.hf as hf_mod
from xsteer.encoders import EmbeddingCache, HFEncoder, get_encoder
from xsteer.encoders.hf import text_module


def test_hit_is_identical_and_runs_no_forward(tiny_bert, texts, tmp_path, count_forwards):
    model, tok = tiny_bert
    enc = HFEncoder.from_model(model, tok, model_id="b", cache=EmbeddingCache(tmp_path))
    counter = count_forwards(text_module(model))
    first = enc.encode(texts, batch_size=4)
    assert counter.calls == 2
    again = enc.encode(texts, batch_size=4)
    assert counter.calls == 2 and torch.equal(first, again)
    assert enc.cache is not None and enc.cache.hits == 1


def test_full_hit_never_loads_weights(tiny_folders, texts, tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    first = get_encoder(tiny_folders["llama"], cache=cache).encode_layers(texts, [1, 2])

    def refuse(*_a, **_k):
        raise AssertionError("weights were loaded on a full cache hit")

    monkeypatch.setattr(hf_mod, "load_hf", refuse)
    fresh = get_encoder(tiny_folders["llama"], cache=cache)
    again = fresh.encode_layers(texts, [1, 2])
    assert all(torch.equal(first[k], again[k]) for k in (1, 2))
    assert fresh._model is None


def test_partial_hit_computes_only_missing_layers(tiny_bert, texts, tmp_path):
    model, tok = tiny_bert
    enc = HFEncoder.from_model(model, tok, model_id="b", cache=EmbeddingCache(tmp_path))
    one = enc.encode(texts, layer=1)
    both = enc.encode_layers(texts, [1, 2])
    assert torch.equal(both[1], one)
    assert enc.cache is not None and enc.cache.hits == 1 and len(list(tmp_path.rglob("*.safetensors"))) == 2


def test_corrupt_file_is_recomputed_and_overwritten(tiny_bert, texts, tmp_path, count_forwards):
    model, tok = tiny_bert
    cache = EmbeddingCache(tmp_path)
    enc = HFEncoder.from_model(model, tok, model_id="b", cache=cache)
    good = enc.encode(texts)
    (path,) = tmp_path.rglob("*.safetensors")
    for garbage in (b"not a safetensors file", b""):
        path.write_bytes(garbage)
        counter = count_forwards(text_module(model))
        torch.testing.assert_close(enc.encode(texts), good)
        assert counter.calls > 0
        key = path.stem
        assert torch.equal(cache.get(key, n=len(texts), dim=16), enc.encode(texts))


def test_flipped_bits_are_a_miss(tmp_path):
    cache = EmbeddingCache(tmp_path)
    k = cache.key("m", "r", 1, "mean", True, ["a", "b"])
    path = cache.put(k, torch.ones(2, 4))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # 1.0 -> a nearby finite float: parses, right shape, wrong value
    path.write_bytes(bytes(data))
    assert cache.get(k, n=2, dim=4) is None
    cache.put(k, torch.ones(2, 4))
    assert torch.equal(cache.get(k, n=2, dim=4), torch.ones(2, 4))


def test_wrong_shape_or_nan_is_a_miss(tmp_path):
    cache = EmbeddingCache(tmp_path)
    k = cache.key("m", "r", 1, "mean", True, ["a", "b"])
    cache.put(k, torch.ones(3, 4))
    assert cache.get(k, n=2, dim=4) is None
    cache.put(k, torch.full((2, 4), float("nan")))
    assert cache.get(k, n=2, dim=4) is None


def test_keys_separate_every_setting():
    base = dict(model_id="m", revision="r", layer=1, pooling="mean", drop_bos=True,
                texts=["a", "b"])
    k0 = EmbeddingCache.key(**base)
    variants = [{"model_id": "n"}, {"revision": "s"}, {"layer": 2}, {"pooling": "last"},
                {"drop_bos": False}, {"texts": ["b", "a"]}, {"texts": ["ab"]}]
    keys = {EmbeddingCache.key(**(base | v)) for v in variants}
    assert k0 not in keys and len(keys) == len(variants)
    assert EmbeddingCache.key(**base, max_length=77) != k0
    assert EmbeddingCache.key(**base) == k0

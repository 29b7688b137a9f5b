"""HFEncoder on tiny models: pooled states match a per-text, unpadded reference (mean, last,
BOS dropped or kept), batching does not change results, all layers come from one pass, and
encode_tokens' mask is exactly what mean pooling uses."""

from __future__ import annotations

import pytest
import torch

from xsteer.encoders import HFEncoder, encoder_meta, get_encoder
from xsteer.encoders.hf import text_module
from xsteer.errors import XSteerError
from xsteer.steer import masked_mean


def reference(model, tok, texts, layer, pooling, drop_bos):
    """One text at a time, no padding: the states every batched result must reproduce."""
    body = text_module(model)
    rows = []
    for t in texts:
        enc = tok(t, return_tensors="pt")
        with torch.no_grad():
            h = body(**enc, output_hidden_states=True).hidden_states[layer][0]
        ids = enc["input_ids"][0]
        if drop_bos and ids[0] == tok.bos_token_id and len(ids) > 1:
            h = h[1:]
        rows.append(h.mean(0) if pooling == "mean" else h[-1])
    return torch.stack(rows)


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_bert_pooling_matches_reference(tiny_bert, texts, layer, pooling):
    model, tok = tiny_bert
    enc = HFEncoder.from_model(model, tok, model_id="tiny-bert")
    assert not enc.causal and not enc.drop_bos
    got = enc.encode(texts, layer=layer, pooling=pooling, batch_size=3)
    torch.testing.assert_close(got, reference(model, tok, texts, layer, pooling, False),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("drop_bos", [True, False])
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_causal_pooling_matches_reference(tiny_llama, texts, pooling, drop_bos):
    model, tok = tiny_llama
    enc = HFEncoder.from_model(model, tok, model_id="tiny-llama", drop_bos=drop_bos)
    assert enc.causal
    got = enc.encode(texts, layer=2, pooling=pooling, batch_size=3)
    torch.testing.assert_close(got, reference(model, tok, texts, 2, pooling, drop_bos),
                               atol=1e-5, rtol=1e-5)


def test_causal_lm_drops_bos_by_default_and_it_matters(tiny_llama, texts):
    model, tok = tiny_llama
    enc = HFEncoder.from_model(model, tok, model_id="tiny-llama")
    assert enc.drop_bos
    kept = HFEncoder.from_model(model, tok, model_id="tiny-llama", drop_bos=False)
    assert not torch.allclose(enc.encode(texts[:3]), kept.encode(texts[:3]), atol=1e-4)


def test_defaults_and_site(tiny_bert, tiny_llama):
    bert = HFEncoder.from_model(*tiny_bert, model_id="b")
    llama = HFEncoder.from_model(*tiny_llama, model_id="l")
    assert (bert.num_layers, bert.default_layer, bert.dim) == (2, 2, 16)
    assert (llama.num_layers, llama.default_layer) == (3, 1)  # num_layers // 3
    assert bert.site() == "layer:2/mean" and llama.site(-1, "last") == "layer:3/last"
    meta = encoder_meta(llama, 2, "last")
    assert meta | {"model_id": "l", "revision": None, "layer": 2, "pooling": "last",
                   "drop_bos": True, "dim": 16} == meta


def test_batching_and_order_do_not_change_results(tiny_llama, texts):
    enc = HFEncoder.from_model(*tiny_llama, model_id="l")
    base = enc.encode(texts, batch_size=1)
    torch.testing.assert_close(enc.encode(texts, batch_size=3), base, atol=1e-5, rtol=1e-5)
    rev = enc.encode(texts[::-1], batch_size=len(texts))
    torch.testing.assert_close(rev.flip(0), base, atol=1e-5, rtol=1e-5)


def test_encode_layers_runs_one_forward_per_batch(tiny_bert, texts, count_forwards):
    model, tok = tiny_bert
    enc = HFEncoder.from_model(model, tok, model_id="b")
    counter = count_forwards(text_module(model))
    layers = enc.encode_layers(texts, [0, 1, 2], batch_size=4)
    assert counter.calls == 2  # 8 texts / batch 4, for three layers at once
    for layer, X in layers.items():
        torch.testing.assert_close(X, enc.encode(texts, layer=layer, batch_size=4))


@pytest.mark.parametrize("which", ["bert", "llama"])
@pytest.mark.parametrize("layer", [1, 2])
def test_masked_mean_of_tokens_equals_mean_pooling(tiny_bert, tiny_llama, texts, which, layer):
    model, tok = tiny_bert if which == "bert" else tiny_llama
    enc = HFEncoder.from_model(model, tok, model_id=which)
    states, mask = enc.encode_tokens(texts, layer=layer, max_length=20, batch_size=3)
    assert states.shape == (len(texts), 20, 16) and mask.shape == (len(texts), 20)
    torch.testing.assert_close(masked_mean(states, mask),
                               enc.encode(texts, layer=layer, pooling="mean"),
                               atol=1e-5, rtol=1e-5)
    if which == "llama":  # BOS sits at position 0 and is not pooled (except a lone BOS)
        assert not mask[:-1, 0].any() and mask[-1, 0]


def test_bad_inputs_name_the_problem(tiny_bert):
    enc = HFEncoder.from_model(*tiny_bert, model_id="b")
    with pytest.raises(XSteerError, match="layer 5 out of range"):
        enc.encode(["a cat"], layer=5)
    with pytest.raises(XSteerError, match="single str"):
        enc.encode("a cat")
    with pytest.raises(XSteerError, match="unknown pooling"):
        enc.encode(["a cat"], pooling="max")
    assert enc.encode([]).shape == (0, 16)


def test_get_encoder_from_folder_loads_lazily(tiny_folders, texts, monkeypatch):
    enc = get_encoder(tiny_folders["llama"], cache=False)
    assert isinstance(enc, HFEncoder) and enc.causal and enc._model is None
    assert enc.revision is not None and enc.revision.startswith("local:")
    X = enc.encode(texts)
    assert X.shape == (len(texts), 16) and torch.isfinite(X).all()
    assert get_encoder(enc) is enc


def _save_with_tokenizer(model, tokenizer, folder):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_clip_text_top_layer_is_the_pipelines_prompt_embeds(tmp_path, texts, wordlevel_tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    cfg = CLIPTextConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=2,
                         eos_token_id=3, pad_token_id=0)
    folder = _save_with_tokenizer(CLIPTextModel(cfg).eval(), wordlevel_tokenizer("$A [SEP]"),
                                  tmp_path / "clip")
    enc = get_encoder(folder, cache=False)
    assert not enc.causal and enc.default_layer == 2
    states, mask = enc.encode_tokens(texts[:3], max_length=16)
    model, tok = enc.model, enc.tokenizer
    batch = tok(texts[:3], padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    torch.testing.assert_close(states, out.last_hidden_state)  # after final_layer_norm
    torch.testing.assert_close(masked_mean(states, mask), enc.encode(texts[:3]), atol=1e-5,
                               rtol=1e-5)


def test_t5_loads_encoder_only(tmp_path, texts, wordlevel_tokenizer):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                   decoder_start_token_id=0)
    folder = _save_with_tokenizer(T5ForConditionalGeneration(cfg).eval(),
                                  wordlevel_tokenizer("$A [SEP]"), tmp_path / "t5")
    enc = get_encoder(folder, cache=False)
    assert (enc.dim, enc.num_layers, enc.default_layer, enc.drop_bos) == (16, 2, 2, False)
    assert type(enc.model).__name__ == "T5EncoderModel"
    X = enc.encode(texts, layer=1)
    assert X.shape == (len(texts), 16) and torch.isfinite(X).all()


def test_progress_bar_only_for_more_than_a_few_batches(tiny_bert, texts, capsys):
    from xsteer.encoders.base import show_progress

    assert [show_progress(None, n) for n in (1, 4, 5)] == [False, False, True]
    assert show_progress(True, 1) and not show_progress(False, 100)
    enc = HFEncoder.from_model(*tiny_bert, model_id="b")
    assert enc.device == "cpu"
    enc.encode(texts, batch_size=1)  # 8 batches: auto shows a bar on stderr
    assert "encode b" in capsys.readouterr().err
    enc.encode(texts, batch_size=4)
    assert capsys.readouterr().err == ""

